"""End-to-end parity with the reference: every ``e2e_*.pt`` case of the parity folder.

Frames are fed one by one as the reference demo does (uint8 image + the case's K per frame, the
tracker initialised with the frame size); then the demo's offline cleanup and MOT text.
Tolerances are those the parity README recommends.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from comotion.geometry.camera import project_points
from comotion.geometry.rotations import axis_angle_to_matrix
from comotion.io.mot import mesh_boxes
from comotion.io.results import DetectionTable, FrameTable, TrackResults
from comotion.tracking import Tracker, TrackerConfig
from comotion.tracking.cleanup import CleanupConfig, cleanup_results, cleanup_tracks, format_mot_rows
from comotion.tracking.shots import ShotDetector
from tests.model.model_fixtures import read_png

CONTINUOUS_ATOL = 2e-4
PIXEL_ATOL = 0.05
MOT_ATOL = 0.011


def rotations(pose: torch.Tensor) -> torch.Tensor:
    return axis_angle_to_matrix(pose.reshape(*pose.shape[:-1], 24, 3))


def case_frames(parity_dir, case) -> list[torch.Tensor]:
    paths = sorted((parity_dir / case["frames_dir"]).glob("*.png"))
    assert len(paths) == case["num_frames"], f"{case['frames_dir']}: expected {case['num_frames']} frames"
    images = [read_png(p) for p in paths]
    sums = torch.tensor([int(image.sum()) for image in images])
    assert torch.equal(sums, case["frame_pixel_sums"]), "frames decode differently from the reference"
    return images


def parity_settings(parity_dir) -> dict:
    """Tracker NMS, shot detector and cleanup settings the fixtures were recorded with."""
    return json.loads((parity_dir / "config.json").read_text())


def reference_tracker_config(parity_dir) -> TrackerConfig:
    settings = parity_settings(parity_dir)
    nms, shots = settings["forward_nms_kwargs"], settings["shot_detector"]
    return TrackerConfig(
        nms_std=nms["std"],
        nms_iou_thr=nms["iou_thr"],
        nms_conf_thr=nms["conf_thr"],
        max_output_tracks=settings["max_output_tracks"],
        shot_threshold=shots["threshold"],
        shot_min_scene_len=shots["min_scene_len"],
    )


@pytest.fixture(scope="module")
def e2e_runs(parity_dir, parity_model):
    """Per e2e case: (case, frames, our per-frame results)."""
    files = sorted(parity_dir.glob("e2e_*.pt"))
    if not files:
        pytest.skip(f"no e2e_*.pt in {parity_dir}")
    torch.set_num_threads(1)
    runs = []
    for path in files:
        case = torch.load(path, weights_only=True)
        images = case_frames(parity_dir, case)
        config = reference_tracker_config(parity_dir)
        tracker = Tracker(parity_model, config, image_size=tuple(case["image_res"]))
        results = [tracker.step(image, case["K"][i]) for i, image in enumerate(images)]
        runs.append((case, images, results))
    return runs


def test_per_frame_decisions_match(e2e_runs):
    for case, _, results in e2e_runs:
        assert case["reference_behaviour"], f"{case['name']}: not a reference-behaviour run"
        for i, (ref, ours) in enumerate(zip(case["per_frame"], results)):
            where = f"{case['name']} frame {i}"
            assert ours.detections.candidate_index.tolist() == ref["nms_idxs"].tolist(), where
            assert ours.tracks.ids.tolist() == ref["track_ids"], where
            assert len(ours.tracks) == ref["num_tracks"], where
            assert ours.created_ids == ref["created_ids"], where
            assert ours.ended_ids == ref["ended_ids"], where
            assert ours.shot_cut == ref["shot_reset"], where


def test_per_frame_tracks_and_detections_match(e2e_runs):
    for case, _, results in e2e_runs:
        for i, (ref, ours) in enumerate(zip(case["per_frame"], results)):
            where = f"{case['name']} frame {i}"
            padded = ours.padded(max_tracks=ref["tracks"]["id"].shape[1])
            expected = ref["tracks"]
            assert torch.equal(padded["id"], expected["id"]), where
            for name in ("betas", "trans", "pred_3d", "hidden"):
                torch.testing.assert_close(
                    padded[name], expected[name], atol=CONTINUOUS_ATOL, rtol=0, msg=where + " " + name
                )
            torch.testing.assert_close(padded["pred_2d"], expected["pred_2d"], atol=PIXEL_ATOL, rtol=0, msg=where)
            torch.testing.assert_close(
                rotations(padded["pose"]), rotations(expected["pose"]), atol=CONTINUOUS_ATOL, rtol=0, msg=where
            )
            det, ref_det = ours.detections, ref["detections"]
            for name, ref_name in (("betas", "betas"), ("trans", "trans"), ("keypoints_3d", "pred_3d")):
                torch.testing.assert_close(getattr(det, name), ref_det[ref_name][0], atol=CONTINUOUS_ATOL, rtol=0)
            torch.testing.assert_close(det.keypoints_2d, ref_det["pred_2d"][0], atol=PIXEL_ATOL, rtol=0)
            torch.testing.assert_close(det.conf_logit, ref_det["conf"][0, :, 0], atol=5e-4, rtol=0)
            torch.testing.assert_close(rotations(det.pose), rotations(ref_det["pose"][0]), atol=CONTINUOUS_ATOL, rtol=0)


def test_shot_detector_scores_match(parity_dir, e2e_runs):
    config = reference_tracker_config(parity_dir)
    for case, images, _ in e2e_runs:
        detector = ShotDetector(config.shot_threshold, config.shot_min_scene_len)
        for i, (image, ref) in enumerate(zip(images, case["per_frame"])):
            cut = detector.process(image)
            assert detector.last_score == pytest.approx(ref["shot_score"], abs=1e-9), f"{case['name']} frame {i}"
            assert cut == bool(ref["shot_detector_cuts"]), f"{case['name']} frame {i}"


def parse_mot(text: str) -> np.ndarray:
    return np.array([[float(v) for v in line.split(",")] for line in text.splitlines()]).reshape(-1, 10)


def test_cleanup_boxes_and_mot_text_match(parity_dir, e2e_runs, parity_model):
    body = parity_model.body
    cleanup_config = CleanupConfig(**parity_settings(parity_dir)["cleanup_kwargs"])
    for case, _, results in e2e_runs:
        ref = case["cleanup"]
        num_slots = case["per_frame"][0]["tracks"]["id"].shape[1]
        padded = [r.padded(num_slots) for r in results]
        ids = torch.stack([p["id"][0, :, 0] for p in padded]).long()
        betas, pose, trans = (torch.stack([p[name][0] for p in padded]) for name in ("betas", "pose", "trans"))
        K = case["K"][-1]  # the demo uses the last frame's K
        torch.testing.assert_close(K, ref["K"])
        with torch.no_grad():
            keypoints_2d = project_points(body.keypoints(betas, pose, trans), K)
        cleaned = cleanup_tracks(
            ids,
            keypoints_2d,
            [r.detections.keypoints_2d for r in results],
            [r.detections.conf_logit for r in results],
            tuple(case["image_res"]),
            cleanup_config,
            track_betas=betas,
        )
        assert [[i, s, e] for i, (s, e) in cleaned.track_ref.items()] == ref["track_ref"], case["name"]
        assert torch.equal(cleaned.frame_index, ref["frame_idxs"]) and torch.equal(cleaned.slot, ref["track_idxs"])

        rows = (cleaned.frame_index, cleaned.slot)
        assert torch.equal(ids[rows], ref["preds"]["id"])
        torch.testing.assert_close(trans[rows], ref["preds"]["trans"], atol=CONTINUOUS_ATOL, rtol=0)
        torch.testing.assert_close(betas[rows], ref["preds"]["betas"], atol=CONTINUOUS_ATOL, rtol=0)
        torch.testing.assert_close(rotations(pose[rows]), rotations(ref["preds"]["pose"]), atol=CONTINUOUS_ATOL, rtol=0)

        height, width = case["image_res"]
        with torch.no_grad():
            boxes = mesh_boxes(body, betas[rows], pose[rows], trans[rows], K, height, width)
        torch.testing.assert_close(boxes, ref["bboxes"], atol=PIXEL_ATOL, rtol=0)
        text = format_mot_rows(body, betas[rows], pose[rows], trans[rows], rows[0], ids[rows], K, (height, width))
        ours, theirs = parse_mot(text), parse_mot(ref["mot"])
        assert ours.shape == theirs.shape
        np.testing.assert_array_equal(ours[:, [0, 1, 6, 7, 8, 9]], theirs[:, [0, 1, 6, 7, 8, 9]])
        np.testing.assert_allclose(ours[:, 2:6], theirs[:, 2:6], rtol=0, atol=MOT_ATOL)


def test_cleanup_of_a_results_table_matches(parity_dir, e2e_runs):
    """The path ``comotion track`` takes: cleanup on the streamed rows (each frame's own keypoints)."""
    cleanup_config = CleanupConfig(**parity_settings(parity_dir)["cleanup_kwargs"])
    for case, _, results in e2e_runs:
        ref = case["cleanup"]

        def rows(get, results=results):
            return np.concatenate([get(r) for r in results])

        table = TrackResults(
            header={},
            frame_index=rows(lambda r: np.full(len(r.tracks), r.frame_index)),
            track_id=rows(lambda r: r.tracks.ids.numpy()),
            betas=rows(lambda r: r.tracks.betas.numpy()),
            pose=rows(lambda r: r.tracks.pose.numpy()),
            trans=rows(lambda r: r.tracks.trans.numpy()),
            keypoints_2d=rows(lambda r: r.tracks.keypoints_2d.numpy()),
            frames=FrameTable(
                np.arange(len(results)),
                case["K"].numpy(),
                np.tile(np.array(case["image_res"], np.int32), (len(results), 1)),
            ),
            detections=DetectionTable(
                rows(lambda r: np.full(len(r.detections), r.frame_index)),
                rows(lambda r: r.detections.keypoints_2d.numpy()),
                rows(lambda r: r.detections.conf_logit.numpy()),
            ),
        )
        cleaned = cleanup_results(table, config=cleanup_config)
        np.testing.assert_array_equal(cleaned.track_id, ref["preds"]["id"].numpy())
        np.testing.assert_array_equal(cleaned.frame_index, ref["preds"]["frame_idx"].numpy())
        np.testing.assert_allclose(cleaned.trans, ref["preds"]["trans"].numpy(), rtol=0, atol=CONTINUOUS_ATOL)


def test_fixed_quirks_run_keeps_ids_increasing(parity_dir, parity_model, e2e_runs):
    for case, images, _ in e2e_runs:
        tracker = Tracker(parity_model, TrackerConfig.fixed())
        last_id = 0
        for image, K in zip(images, case["K"]):
            result = tracker.step(image, K)
            ids = result.tracks.ids.tolist()
            assert ids == sorted(ids) and len(set(ids)) == len(ids)
            assert all(i > last_id for i in result.created_ids)
            last_id = max([last_id, *ids])
