"""Pose ground-truth readers, prediction reader, both pairing settings and end-to-end scores."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from .eval_fixtures import synthetic_clip

from comotion.errors import InputError
from comotion.eval.pose import evaluate_pose, match_full_image, match_oracle
from comotion.eval.pose_data import (
    PoseGroundTruth,
    PosePredictions,
    read_3dpw,
    read_coco_keypoints,
    read_pose_predictions,
    read_posetrack,
    read_synthetic,
)


def coco_triplets(points, visible):
    return [v for (x, y), vis in zip(points, visible) for v in (float(x), float(y), 2 if vis else 0)]


def person_keypoints(x0, y0, scale=1.0):
    """17 distinct 2D points of a person whose box starts at (x0, y0)."""
    return np.stack([x0 + scale * np.arange(17) * 3.0, y0 + scale * np.arange(17) ** 1.5], axis=1)


def test_coco_reader(tmp_path):
    kp = person_keypoints(10, 20)
    data = {
        "images": [{"id": 42, "file_name": "a.jpg"}, {"id": 7, "file_name": "b.jpg"}],
        "annotations": [
            {"image_id": 7, "id": 100, "keypoints": coco_triplets(kp, [True] * 16 + [False]), "bbox": [10, 20, 50, 80]},
            {"image_id": 42, "id": 101, "keypoints": coco_triplets(kp, [True] * 17), "bbox": [0, 0, 1, 1], "iscrowd": 1},
            {"image_id": 42, "id": 102, "keypoints": coco_triplets(kp, [False] * 17), "bbox": [0, 0, 1, 1]},
        ],
    }
    (tmp_path / "coco.json").write_text(json.dumps(data))
    gt = read_coco_keypoints(tmp_path / "coco.json")
    assert gt.frame_index.tolist() == [1] and gt.person_id.tolist() == [100]  # crowd and unlabelled skipped
    np.testing.assert_allclose(gt.box, [[10, 20, 60, 100]])
    assert gt.valid_2d.sum() == 16 and gt.skeleton_2d == "coco17"


def test_posetrack_reader_drops_head_keypoints(tmp_path):
    kp = person_keypoints(0, 0)
    data = {
        "images": [{"id": 5, "file_name": "000000.jpg", "frame_index": 1}],
        "annotations": [
            {"image_id": 5, "track_id": 3, "keypoints": coco_triplets(kp, [True] * 17), "bbox": [0, 0, 60, 80]},
            {"image_id": 5, "track_id": 4, "bbox": [0, 0, 10, 10]},  # box-only annotation
        ],
    }
    (tmp_path / "seq.json").write_text(json.dumps(data))
    gt = read_posetrack(tmp_path / "seq.json")
    assert gt.person_id.tolist() == [3] and gt.name == "seq"
    assert not gt.valid_2d[0, 1] and not gt.valid_2d[0, 2] and gt.valid_2d.sum() == 15


def test_keypoint_json_errors(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"images": [{"id": 1}], "annotations": [{"image_id": 2, "keypoints": []}]}))
    with pytest.raises(InputError, match=r"annotations\[0\]: image_id 2 is not in 'images'"):
        read_coco_keypoints(tmp_path / "bad.json")
    (tmp_path / "short.json").write_text(json.dumps({"images": [{"id": 1}], "annotations": [{"image_id": 1, "keypoints": [1, 2]}]}))
    with pytest.raises(InputError, match="'keypoints' must be 51 numbers"):
        read_coco_keypoints(tmp_path / "short.json")
    (tmp_path / "nofield.json").write_text(json.dumps({"images": []}))
    with pytest.raises(InputError, match="no field 'annotations'"):
        read_coco_keypoints(tmp_path / "nofield.json")


def write_3dpw(path, joints_world, cam_poses, K, valid):
    frames = len(cam_poses)
    data = {
        "sequence": "courtyard_test",
        "betas": [np.zeros(10)],
        "poses": [np.zeros((frames, 72))],
        "trans": [np.zeros((frames, 3))],
        "cam_poses": cam_poses,
        "cam_intrinsics": K,
        "jointPositions": [joints_world.reshape(frames, 72)],
        "campose_valid": [valid],
        "img_frame_ids": np.arange(frames),
    }
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=2)


def test_3dpw_reader_transforms_to_camera_and_projects(tmp_path):
    joints = np.zeros((2, 24, 3))
    joints[:, :, 0] = np.linspace(-0.5, 0.5, 24)
    joints[:, :, 1] = np.linspace(-1, 1, 24) ** 2
    cam = np.tile(np.eye(4), (2, 1, 1))
    cam[:, 2, 3] = 4.0  # the camera sits 4 m in front of the world origin
    cam[1, :3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]  # frame 1: rotated 90 degrees about z
    K = np.array([[1000.0, 0, 500], [0, 1000.0, 400], [0, 0, 1]])
    write_3dpw(tmp_path / "courtyard_test.pkl", joints, cam, K, np.array([1, 1], np.uint8))
    gt = read_3dpw(tmp_path / "courtyard_test.pkl")
    assert gt.frame_index.tolist() == [0, 1] and gt.keypoints_3d.shape == (2, 22, 3)
    np.testing.assert_allclose(gt.keypoints_3d[0], joints[0, :22] + [0, 0, 4])
    np.testing.assert_allclose(gt.keypoints_3d[1, :, 0], -joints[1, :22, 1])
    expected_u = 500 + 1000 * joints[0, :22, 0] / 4.0
    np.testing.assert_allclose(gt.keypoints_2d[0, :, 0], expected_u)
    np.testing.assert_allclose(gt.box[0, [0, 2]], [expected_u.min(), expected_u.max()])


def test_3dpw_refuses_foreign_classes(tmp_path):
    from pathlib import PurePosixPath

    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"x": PurePosixPath("/")}, f)
    with pytest.raises(InputError, match="refusing to load class"):
        read_3dpw(tmp_path / "evil.pkl")


def test_synthetic_reader_presence_and_visibility(tmp_path):
    present = np.ones((2, 3), bool)
    present[0, 1] = False  # person 1 absent from frame 1
    visible = np.ones((3, 2, 27), bool)
    visible[2, 1] = False  # person 2 fully occluded on frame 2
    visible[0, 0, :5] = False
    synthetic_clip(tmp_path / "clip", present=present, visible=visible)
    gt = read_synthetic(tmp_path / "clip")
    assert gt.name == "clip" and gt.skeleton_3d == "comotion27"
    assert list(zip(gt.frame_index.tolist(), gt.person_id.tolist())) == [(0, 1), (0, 2), (1, 2), (2, 1)]
    assert gt.valid_2d[0].sum() == 22 and gt.valid_3d.all()


def test_synthetic_reader_errors(tmp_path):
    (tmp_path / "clip").mkdir()
    with pytest.raises(InputError, match="not a synthetic clip folder"):
        read_synthetic(tmp_path / "clip")


def save_predictions(path, frame_index, keypoints_2d, keypoints_3d, track_id=None):
    track_id = np.arange(len(frame_index)) if track_id is None else track_id
    np.savez(path, frame_index=frame_index, track_id=track_id, keypoints_2d=keypoints_2d, keypoints_3d=keypoints_3d)


def test_prediction_reader_checks_shapes(tmp_path):
    np.savez(tmp_path / "p.npz", frame_index=np.zeros(2), track_id=np.zeros(2), keypoints_2d=np.zeros((2, 17, 2)))
    with pytest.raises(InputError, match=r"'keypoints_2d' must have shape \(2, 27, 2\)"):
        read_pose_predictions(tmp_path / "p.npz")
    with pytest.raises(InputError, match="predictions not found"):
        read_pose_predictions(tmp_path / "none.npz")


def _gt(boxes, keypoints, frames):
    n = len(boxes)
    return PoseGroundTruth(
        name="t", frame_index=np.array(frames), person_id=np.arange(n), box=np.array(boxes, float),
        keypoints_2d=np.array(keypoints, float), valid_2d=np.ones(np.shape(keypoints)[:2], bool), skeleton_2d="comotion27",
    )  # fmt: skip


def _pred(keypoints, frames):
    keypoints = np.array(keypoints, float)
    return PosePredictions(np.array(frames), np.arange(len(frames)), keypoints, None, None)


def square_person(x, y, size):
    """27 keypoints spread over the square [x, x+size] x [y, y+size]."""
    t = np.linspace(0, 1, 27)
    return np.stack([x + size * t, y + size * t[::-1]], axis=1)


def test_oracle_picks_best_iou_per_person_independently():
    gt = _gt([[0, 0, 100, 100]], [square_person(0, 0, 100)], [0])
    pred = _pred([square_person(50, 0, 100), square_person(10, 5, 100), square_person(0, 0, 100)], [0, 0, 1])
    matches = match_oracle(gt, pred)
    assert matches.pred_rows.tolist() == [1]  # best IoU on the same frame (row 2 is another frame)


def test_full_image_hungarian_on_keypoint_distance():
    a, b = square_person(0, 0, 100), square_person(300, 0, 100)
    gt = _gt([[0, 0, 100, 100], [300, 0, 400, 100]], [a, b], [0, 0])
    pred = _pred([b + 3, a + 1, a + 400], [0, 0, 0])
    matches = match_full_image(gt, pred)
    assert sorted(zip(matches.gt_rows.tolist(), matches.pred_rows.tolist())) == [(0, 1), (1, 0)]
    far = _pred([a + 80], [0])  # mean distance 113 px > 0.5 * 100: unmatched
    assert len(match_full_image(_gt([[0, 0, 100, 100]], [a], [0]), far).gt_rows) == 0


def test_evaluate_synthetic_end_to_end(tmp_path):
    kp3, kp2 = synthetic_clip(tmp_path / "clip")
    frames, people = kp3.shape[:2]
    f = np.repeat(np.arange(frames), people)
    pred3 = kp3.reshape(-1, 27, 3) + np.array([0.0, 0.0, 0.5])  # depth offset: root-centred metrics unaffected
    pred2 = kp2.reshape(-1, 27, 2).copy()
    pred2[:, :, 0] += 1.0  # 1 px shift in x
    save_predictions(tmp_path / "pred.npz", f, pred2, pred3)
    for setting in ("full", "oracle"):
        report = evaluate_pose(tmp_path / "clip", tmp_path / "pred.npz", "synthetic", setting)
        overall = report.overall
        assert overall["num_people"] == 6 and overall["num_matched"] == 6
        assert overall["mpjpe"] == pytest.approx(0.0, abs=1e-9) and overall["pa_mpjpe"] == pytest.approx(0.0, abs=1e-6)
        assert overall["pck3d@0.1"] == 1.0
        assert list(report.per_sequence) == ["clip"]
    # a 1 px error is within 5 % of any of these boxes
    assert report.overall["pck@0.05"] == 1.0


def test_evaluate_pose_folder_needs_matching_prediction_names(tmp_path):
    synthetic_clip(tmp_path / "gt" / "clip_a")
    synthetic_clip(tmp_path / "gt" / "clip_b")
    (tmp_path / "pred").mkdir()
    with pytest.raises(InputError, match="no predictions for sequence 'clip_a'"):
        evaluate_pose(tmp_path / "gt", tmp_path / "pred", "synthetic")


def test_predictions_from_a_results_folder(tmp_path):
    from comotion.io.results import TrackWriter

    kp2 = np.arange(2 * 27 * 2, dtype=float).reshape(2, 27, 2)
    with TrackWriter(tmp_path / "tracks", {"source": "test"}) as writer:
        for frame in range(2):
            tracks = {
                "track_id": np.array([4]), "betas": np.zeros((1, 10)), "pose": np.zeros((1, 72)),
                "trans": np.zeros((1, 3)), "keypoints_3d": np.ones((1, 27, 3)), "keypoints_2d": kp2[frame : frame + 1],
                "confidence": np.ones(1),
            }  # fmt: skip
            writer.write_frame(frame, np.array([[500.0, 0, 320], [0, 500.0, 240]]), (480, 640), tracks)
    pred = read_pose_predictions(tmp_path / "tracks")
    assert pred.frame_index.tolist() == [0, 1] and pred.track_id.tolist() == [4, 4]
    np.testing.assert_allclose(pred.keypoints_2d, kp2)
    assert pred.coco_2d is None and pred.keypoints_3d.shape == (2, 27, 3)
    assert pred.keypoints_for("coco17").shape == (2, 17, 2)  # taken from the 27 keypoints
