"""The user-facing Tracker with a scripted stand-in for the network, and the shot-cut detector."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from comotion.errors import InputError
from comotion.model.comotion import FrameFeatures, PreparedFrame, UpdatedTracks
from comotion.tracking import ShotDetector, Tracker, TrackerConfig
from comotion.tracking.shots import ContentWeights

from .synthetic import TRANS_PER_PIXEL, detections


class ScriptedModel:
    """Detects people at scripted positions per frame; the update keeps tracks in place."""

    def __init__(self, script: list[list[tuple[float, float]]]):
        self.script = script
        self.config = SimpleNamespace(update=SimpleNamespace(hidden_dim=4))
        self.detect_calls: list[dict] = []
        self.frame = 0

    def prepare(self, image, K=None) -> PreparedFrame:
        height, width = image.shape[1:]
        K = torch.tensor([[1000.0, 0, width / 2], [0, 1000.0, height / 2]]) if K is None else K
        return PreparedFrame(image[None].float(), K[None], K, (height, width))

    def detect(self, frame, *, std, iou_thr, conf_thr):
        self.detect_calls.append({"std": std, "iou_thr": iou_thr, "conf_thr": conf_thr})
        people = detections(self.script[self.frame % len(self.script)])
        self.frame += 1
        return people, FrameFeatures(frame.image, frame.K_crop, frame.K, frame.image_size)

    def update(self, features, betas, pose, trans, keypoints_3d, hidden) -> UpdatedTracks:
        return UpdatedTracks(pose, trans, keypoints_3d, keypoints_3d[..., :2] / TRANS_PER_PIXEL, hidden + 1)


def frames(count: int, cut_at: int | None = None, size=(720, 1280)):
    """Grey frames; from ``cut_at`` on, saturated red ones (a content cut)."""
    out = []
    for i in range(count):
        image = torch.full((3, *size), 128, dtype=torch.uint8)
        if cut_at is not None and i >= cut_at:
            image[0], image[1:] = 255, 0
        out.append(image)
    return out


def test_run_accepts_pairs_images_and_source_frames():
    model = ScriptedModel([[(300, 300), (900, 300)]])
    tracker = Tracker(model, TrackerConfig(nms_conf_thr=0.3))
    images = frames(3)
    source_frame = SimpleNamespace(index=0, image=images[2], K=None)
    results = list(tracker.run([(images[0], None), images[1], source_frame]))
    assert [r.frame_index for r in results] == [0, 1, 2]
    assert [r.tracks.ids.tolist() for r in results] == [[1, 2]] * 3
    assert results[2].tracks.hidden[:, 0].tolist() == [3.0, 3.0]
    assert model.detect_calls[0] == {"std": 0.08, "iou_thr": 0.4, "conf_thr": 0.3}
    assert tracker.engine.image_size == (720, 1280)


def test_reset_starts_ids_again():
    tracker = Tracker(ScriptedModel([[(300, 300)], [(300, 300), (900, 300)]]))
    assert [r.tracks.ids.tolist() for r in tracker.run(frames(2))] == [[1], [1, 2]]
    tracker.reset()
    assert tracker.step(frames(1)[0]).tracks.ids.tolist() == [1]


@pytest.mark.parametrize("enabled", [False, True])
def test_shot_cut_reset_only_when_enabled(enabled):
    tracker = Tracker(ScriptedModel([[(300, 300)]]), TrackerConfig(shot_cut_reset=enabled))
    results = list(tracker.run(frames(6, cut_at=4)))
    assert [r.shot_cut for r in results] == [False] * 4 + [enabled, False]
    assert results[4].tracks.ids.tolist() == ([2] if enabled else [1])
    assert results[4].ended_ids == ([1] if enabled else [])


def test_fixed_config_turns_every_fix_on():
    fixed = TrackerConfig.fixed()
    assert fixed.shot_cut_reset and fixed.fix_collapse_rule3 and fixed.fix_collapse_velocity
    assert fixed.normalize_similarity_by_image
    assert fixed.similarity_scale((480, 640)) == 640.0 and TrackerConfig().similarity_scale((480, 640)) == 1024.0
    assert not TrackerConfig().shot_cut_reset


@pytest.mark.parametrize(
    "field, value", [("ema_coef", 1.0), ("overlap_window", 0), ("overlap_time_thr", 30), ("young_age", -1)]
)
def test_bad_config_is_one_line_error(field, value):
    with pytest.raises(InputError, match=field):
        TrackerConfig(**{field: value})


# ----------------------------------------------------------------------------------------------
# Shot detector


def test_shot_detector_scores_mean_hsv_difference():
    detector = ShotDetector()
    grey = np.full((4, 6, 3), 128, np.uint8)
    red = np.zeros((4, 6, 3), np.uint8)
    red[..., 0] = 255
    assert detector.score(grey) == 0.0  # first frame
    # grey: H 0, S 0, V 128; red: H 0, S 255, V 255 -> (0 + 255 + 127) / 3
    assert detector.score(red) == pytest.approx((0 + 255 + 127) / 3)
    assert detector.score(red) == 0.0


def test_shot_detector_respects_min_scene_length():
    detector = ShotDetector(threshold=50.0, min_scene_len=3)
    black, white = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)
    sequence = [black, black, black, white, black, black, white, white]
    # Value jumps by 255 (score 85) at frames 3, 4 and 6; frame 4 is within 3 frames of the cut at 3.
    assert [detector.process(image) for image in sequence] == [False, False, False, True, False, False, True, False]


def test_shot_detector_edges_component():
    detector = ShotDetector(threshold=50.0, weights=ContentWeights(hue=0.0, saturation=0.0, value=0.0, edges=1.0))
    flat = np.full((64, 64, 3), 100, np.uint8)
    striped = flat.copy()
    striped[:, ::16] = 250
    detector.score(flat)
    assert detector.score(striped) > 0.0  # edges appear where there were none
    assert detector.score(striped) == 0.0


def test_shot_detector_accepts_float_tensors():
    detector = ShotDetector()
    detector.score(torch.zeros(3, 8, 8))
    assert detector.score(torch.ones(3, 8, 8)) == pytest.approx(255 / 3)
