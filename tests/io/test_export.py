"""Exports from loaded results: per-row boxes with per-frame K and size, motion files per track."""

from __future__ import annotations

import json

import numpy as np
import torch

from comotion.io import TrackWriter, export_outputs, load_tracks
from comotion.io.mot import format_mot_lines, mesh_boxes
from tests.io.io_fixtures import random_pose


def write_results(path, body):
    """Frames 0-5; track 1 in all, track 4 in frames 2-3; frames 3+ are smaller images."""
    sizes = [(200, 300)] * 3 + [(100, 150)] * 3
    with TrackWriter(path, {"body_model": body.name, "fps": 20.0}, with_coco=True) as writer:
        for f, (h, w) in enumerate(sizes):
            ids = [1] + ([4] if f in (2, 3) else [])
            n = len(ids)
            pose = random_pose(n, seed=f)
            trans = torch.tensor([[0.2 * k, 0.0, 4.0 + 0.1 * f] for k in ids])
            out = body(torch.zeros(n, 10), pose, trans, coco=True)
            K = torch.tensor([[2.0 * w, 0, w / 2], [0, 2.0 * w, h / 2]])
            rows = {
                "track_id": np.array(ids),
                "betas": np.zeros((n, 10)),
                "pose": pose,
                "trans": trans,
                "keypoints_3d": out.keypoints,
                "keypoints_2d": out.keypoints[..., :2] / out.keypoints[..., 2:] * 2 * w,
                "confidence": np.full(n, 0.5),
                "coco_2d": out.coco[..., :2],
            }
            writer.write_frame(f, K, (h, w), rows)
    return load_tracks(path)


def test_mot_export_uses_each_rows_frame(tmp_path, tiny_body):
    results = write_results(tmp_path / "tracks", tiny_body)
    export_outputs(results, tiny_body, tmp_path, "clip", {"mot"})
    expected = []
    for row in range(len(results)):
        frame = results.frame_index[row]
        h, w = results.frames.image_size[frame]
        box = mesh_boxes(
            tiny_body,
            torch.as_tensor(results.betas[row : row + 1]),
            torch.as_tensor(results.pose[row : row + 1]),
            torch.as_tensor(results.trans[row : row + 1]),
            torch.as_tensor(results.frames.K[frame]),
            int(h),
            int(w),
        )
        expected += format_mot_lines(results.frame_index[row : row + 1], results.track_id[row : row + 1], box.numpy())
    assert (tmp_path / "clip.txt").read_text() == "".join(expected)


def test_posetrack_and_motion_exports(tmp_path, tiny_body):
    results = write_results(tmp_path / "tracks", tiny_body)
    written = export_outputs(results, tiny_body, tmp_path, "clip", {"posetrack", "amass", "bvh"}, bvh_single_file=True)
    names = sorted(p.name for p in written)
    assert names == ["clip.json", "track_0001.npz", "track_0004.npz", "tracks.bvh"]
    data = json.loads((tmp_path / "clip.json").read_text())
    assert [len([a for a in data["annotations"] if a["image_id"] == f]) for f in range(6)] == [1, 1, 2, 2, 1, 1]
    first = data["annotations"][0]
    np.testing.assert_allclose(np.reshape(first["keypoints"], (17, 3))[:, :2], results.coco_2d[0], atol=0.01)
    assert np.load(tmp_path / "motion" / "track_0004.npz")["frame_indices"].tolist() == [2, 3]
    assert float(np.load(tmp_path / "motion" / "track_0001.npz")["mocap_framerate"]) == 20.0
    text = (tmp_path / "motion" / "tracks.bvh").read_text()
    assert text.count("ROOT") == 2 and "Frames: 6" in text and "Frame Time: 0.05000000" in text
