"""Helpers shared by the evaluation tests."""

from __future__ import annotations

import numpy as np


def synthetic_clip(folder, frames=3, people=2, present=None, visible=None):
    """A clip folder in the ``comotion synth`` format with random people 5 m in front of the camera."""
    from comotion.synth.clip import ClipGroundTruth, write_clip

    rng = np.random.default_rng(1)
    kp3 = (rng.normal(size=(frames, people, 27, 3)) * 0.3 + np.array([0, 0, 5.0])).astype(np.float32)
    kp2 = 500 + 1000 * kp3[..., :2] / kp3[..., 2:]
    box = np.concatenate([kp2.min(axis=2), kp2.max(axis=2)], axis=-1)
    zeros = lambda *shape: np.zeros(shape, np.float32)
    gt = ClipGroundTruth(
        ids=np.arange(1, people + 1, dtype=np.int32),
        present=np.ones((people, frames), bool) if present is None else present,
        betas=zeros(frames, people, 10), pose=zeros(frames, people, 72), trans=zeros(frames, people, 3),
        keypoints_3d=kp3, keypoints_2d=kp2,
        keypoints_visible=np.ones((frames, people, 27), bool) if visible is None else visible,
        coco_3d=zeros(frames, people, 17, 3), coco_2d=zeros(frames, people, 17, 2),
        coco_visible=np.ones((frames, people, 17), bool), truncation=zeros(frames, people),
        visible_pixels=np.ones((frames, people), np.int32), visible_fraction=np.ones((frames, people), np.float32),
        box=box, box_visible=box, K=np.tile(np.float32([[1000, 0, 500], [0, 1000, 500]]), (frames, 1, 1)),
        camera_rotation=np.tile(np.eye(3, dtype=np.float32), (frames, 1, 1)), camera_translation=zeros(frames, 3),
    )  # fmt: skip
    write_clip(folder, [np.zeros((8, 8, 3), np.uint8)] * frames, gt, {"fps": 30.0, "seed": 0})
    return kp3.astype(np.float64), kp2.astype(np.float64)
