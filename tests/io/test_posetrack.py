"""PoseTrack-style JSON output."""

from __future__ import annotations

import json

import numpy as np

from comotion.io.posetrack import COCO_KEYPOINT_NAMES, PoseTrackWriter, coco_from_keypoints27


def test_coco_from_comotion_keypoints_picks_the_named_points():
    keypoints = np.arange(27)[:, None].repeat(2, axis=1)
    coco = coco_from_keypoints27(keypoints)[:, 0]
    named = dict(zip(COCO_KEYPOINT_NAMES, coco))
    # 22 nose, 23 right eye, 24 left eye, 25 right ear, 26 left ear; SMPL 16 left shoulder, 2 right hip.
    assert named["nose"] == 22 and named["left_eye"] == 24 and named["right_ear"] == 25
    assert named["left_shoulder"] == 16 and named["right_wrist"] == 21 and named["right_hip"] == 2
    assert named["left_ankle"] == 7


def test_posetrack_file_layout(tmp_path):
    path = tmp_path / "video.json"
    writer = PoseTrackWriter(path, "video")
    keypoints = np.full((2, 17, 2), 10.0)
    keypoints[1, 3] = [-5.0, 10.0]  # outside the image -> v = 0
    boxes = np.array([[[1.0, 2.0], [11.0, 32.0]], [[0.0, 0.0], [5.0, 5.0]]])
    writer.add_frame(0, 40, 60, np.array([4, 9]), keypoints, np.array([0.5, 0.25]), boxes)
    writer.add_frame(1, 40, 60, np.array([], int), np.zeros((0, 17, 2)), np.zeros(0), np.zeros((0, 2, 2)))
    writer.add_frame(2, 40, 60, np.array([4]), keypoints[:1], np.array([0.75]), boxes[:1])
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video.json"]
    data = json.loads(path.read_text())
    assert [image["frame_index"] for image in data["images"]] == [1, 2, 3]
    assert [image["id"] for image in data["images"]] == [0, 1, 2]
    assert {image["nframes"] for image in data["images"]} == {3}
    assert data["images"][2]["file_name"] == "video/000002.jpg"
    annotations = data["annotations"]
    assert [(a["image_id"], a["track_id"]) for a in annotations] == [(0, 4), (0, 9), (2, 4)]
    assert len({a["id"] for a in annotations}) == 3
    first, second = annotations[0], annotations[1]
    assert first["keypoints"][:3] == [10.0, 10.0, 1.0] and len(first["keypoints"]) == 51
    assert second["keypoints"][9:12] == [-5.0, 10.0, 0.0]
    assert first["bbox"] == [1.0, 2.0, 10.0, 30.0]
    assert first["scores"] == [0.5] * 17
    assert data["categories"][0]["keypoints"] == list(COCO_KEYPOINT_NAMES)
