"""PoseTrack-style JSON keypoints: ``images``, ``annotations`` (one per person and frame), ``categories``.

Keypoints are COCO-17 in COCO order (``COCO_KEYPOINT_NAMES``): ``[x, y, v] * 17`` in pixels with
``v = 1`` inside the image and ``0`` outside, plus ``scores`` (17 per-keypoint confidences, here
the track confidence), ``bbox = [x, y, w, h]`` and ``track_id``.  Images carry ``id`` /
``frame_id`` = processed-frame index, ``frame_index`` = that index + 1 (as in PoseTrack21),
``file_name``, ``vid_id`` and ``nframes``.

The writer streams annotations to a temporary file and assembles the JSON on ``close()``, so its
memory does not grow with the number of annotations.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

COCO_KEYPOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
# COCO limbs, 1-based keypoint numbers as in the COCO/PoseTrack category record.
COCO_SKELETON = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
    (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip
# COCO-17 keypoints taken from CoMotion's 27 (22 SMPL joints, then nose, right eye, left eye,
# right ear, left ear) when the body model has no COCO regressor.  SMPL hips sit inside the
# pelvis, a little higher and more central than COCO's annotated hips.
COCO_FROM_KEYPOINTS27 = (22, 24, 23, 26, 25, 16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8)


def coco_from_keypoints27(keypoints: np.ndarray) -> np.ndarray:
    """``(..., 27, D)`` CoMotion keypoints -> ``(..., 17, D)`` approximate COCO keypoints."""
    return keypoints[..., list(COCO_FROM_KEYPOINTS27), :]


class PoseTrackWriter:
    """Collect PoseTrack annotations frame by frame; ``close()`` writes the JSON file."""

    def __init__(self, path: str | Path, video_name: str, file_name_pattern: str = "{video}/{index:06d}.jpg") -> None:
        self.path = Path(path)
        self.video_name = video_name
        self.file_name_pattern = file_name_pattern
        self._annotations_tmp = self.path.with_name(self.path.name + ".annotations.tmp")
        self._annotations = open(self._annotations_tmp, "w")
        self._images: list[dict] = []
        self._count = 0

    def add_frame(
        self,
        frame_index: int,
        height: int,
        width: int,
        track_ids: np.ndarray,
        keypoints: np.ndarray,
        scores: np.ndarray,
        boxes: np.ndarray,
    ) -> None:
        """One image and its people: ``track_ids (N,)``, ``keypoints (N, 17, 2)`` pixels,
        ``scores (N,)`` in 0..1, ``boxes (N, 2, 2)`` ``[[x1, y1], [x2, y2]]`` pixels."""
        frame_index = int(frame_index)
        self._images.append(
            {
                "file_name": self.file_name_pattern.format(video=self.video_name, index=frame_index),
                "id": frame_index,
                "frame_id": frame_index,
                "frame_index": frame_index + 1,
                "vid_id": self.video_name,
                "is_labeled": True,
                "height": int(height),
                "width": int(width),
            }
        )
        keypoints = np.asarray(keypoints, np.float64).reshape(-1, 17, 2)
        inside = (
            (keypoints[..., 0] > 0)
            & (keypoints[..., 0] < width)
            & (keypoints[..., 1] > 0)
            & (keypoints[..., 1] < height)
        )
        triplets = np.concatenate([keypoints, inside[..., None].astype(np.float64)], axis=-1).reshape(
            len(keypoints), 51
        )
        boxes = np.asarray(boxes, np.float64).reshape(-1, 2, 2)
        for track_id, kp, score, box in zip(np.asarray(track_ids), triplets, np.asarray(scores), boxes):
            record = {
                "image_id": frame_index,
                "id": self._count,
                "track_id": int(track_id),
                "category_id": 1,
                "keypoints": [round(float(v), 2) for v in kp],
                "scores": [round(float(score), 4)] * 17,
                "bbox": [
                    round(float(v), 2) for v in (box[0, 0], box[0, 1], box[1, 0] - box[0, 0], box[1, 1] - box[0, 1])
                ],
            }
            self._annotations.write(json.dumps(record) + "\n")
            self._count += 1

    def close(self) -> None:
        """Write ``path`` (atomically) and remove the temporary annotation file."""
        self._annotations.close()
        for image in self._images:
            image["nframes"] = len(self._images)
        category = {
            "supercategory": "person",
            "id": 1,
            "name": "person",
            "keypoints": list(COCO_KEYPOINT_NAMES),
            "skeleton": [list(pair) for pair in COCO_SKELETON],
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as out, open(self._annotations_tmp) as annotations:
            out.write('{"images": ' + json.dumps(self._images) + ', "annotations": [')
            for number, line in enumerate(annotations):
                out.write(("," if number else "") + "\n" + line.rstrip("\n"))
            out.write('\n], "categories": [' + json.dumps(category) + "]}\n")
        os.replace(tmp, self.path)
        self._annotations_tmp.unlink()
