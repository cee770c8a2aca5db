"""Hand-made people and update functions that drive the tracker without a network.

A person is a stick figure of the 27 CoMotion keypoints, about 320 px tall, placed at a pixel
position.  Its similarity to a copy shifted by ``d`` pixels is ``1 / (1 + (d / 16.84)^2)``
(skeleton scale 0.2056 from the knee-hip limb, of 1024 px, kernel width 0.08): 0.92 at 5 px,
0.63 at 13 px, 0.15 at 40 px, 0.10 at 50 px.
"""

from __future__ import annotations

import torch

from comotion.model.detect import Detections
from comotion.tracking import TrackState

# (x, y) metres, y down, facing the camera: 22 SMPL joints, nose, right eye, left eye, right ear, left ear.
STICK_FIGURE = torch.tensor(
    [
        (0.0, 0.0), (0.1, 0.05), (-0.1, 0.05), (0.0, -0.1), (0.1, 0.45), (-0.1, 0.45), (0.0, -0.25),
        (0.1, 0.85), (-0.1, 0.85), (0.0, -0.35), (0.12, 0.9), (-0.12, 0.9), (0.0, -0.55), (0.08, -0.5),
        (-0.08, -0.5), (0.0, -0.65), (0.18, -0.5), (-0.18, -0.5), (0.2, -0.25), (-0.2, -0.25),
        (0.22, 0.0), (-0.22, 0.0), (0.0, -0.7), (-0.03, -0.73), (0.03, -0.73), (-0.07, -0.7), (0.07, -0.7),
    ]
)  # fmt: skip
PIXELS_PER_METRE = 200.0
# Root translation of a person at pixel (x, y): metres, so that 100 px of motion is 1 m.
TRANS_PER_PIXEL = 0.01
IMAGE_SIZE = (720, 1280)


def person_keypoints(x: float, y: float) -> torch.Tensor:
    """``(27, 2)`` pixels of the stick figure with its pelvis at ``(x, y)``."""
    return STICK_FIGURE * PIXELS_PER_METRE + torch.tensor([x, y])


def person_trans(x: float, y: float) -> torch.Tensor:
    return torch.tensor([x * TRANS_PER_PIXEL, y * TRANS_PER_PIXEL, 5.0])


def detections(positions: list[tuple[float, float]], logits: list[float] | None = None) -> Detections:
    """Detections of stick figures at pixel ``positions`` (confidence logit 3 unless given)."""
    num = len(positions)
    keypoints_2d = torch.stack([person_keypoints(*p) for p in positions]) if num else torch.zeros(0, 27, 2)
    trans = torch.stack([person_trans(*p) for p in positions]) if num else torch.zeros(0, 3)
    keypoints_3d = torch.cat([keypoints_2d * TRANS_PER_PIXEL, torch.full((num, 27, 1), 5.0)], dim=-1)
    return Detections(
        betas=torch.ones(num, 10),
        pose=torch.zeros(num, 72),
        trans=trans,
        keypoints_3d=keypoints_3d,
        keypoints_2d=keypoints_2d,
        conf_logit=torch.tensor([3.0] * num if logits is None else logits, dtype=torch.float32),
        candidate_index=torch.arange(num),
    )


def place(tracks: TrackState, positions: torch.Tensor) -> TrackState:
    """Tracks moved to pelvis pixel ``positions (N, 2)``; hidden state counts the updates."""
    keypoints_2d = STICK_FIGURE * PIXELS_PER_METRE + positions[:, None, :]
    trans = torch.cat([positions * TRANS_PER_PIXEL, torch.full((len(tracks), 1), 5.0)], dim=-1)
    keypoints_3d = torch.cat([keypoints_2d * TRANS_PER_PIXEL, torch.full((len(tracks), 27, 1), 5.0)], dim=-1)
    return tracks.replace(keypoints_2d=keypoints_2d, trans=trans, keypoints_3d=keypoints_3d, hidden=tracks.hidden + 1)


def positions_of(tracks: TrackState) -> torch.Tensor:
    """Pelvis pixel position ``(N, 2)`` of each track."""
    return tracks.keypoints_2d[:, 0, :]


class RecordingUpdate:
    """An update function that moves tracks by a rule and records every call's batch.

    ``rule(tracks) -> positions (N, 2)``; default: stay in place.
    """

    def __init__(self, rule=None):
        self.rule = rule if rule is not None else positions_of
        self.calls: list[list[int]] = []

    def __call__(self, tracks: TrackState) -> TrackState:
        self.calls.append(tracks.ids.tolist())
        return place(tracks, self.rule(tracks))
