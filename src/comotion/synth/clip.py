"""The on-disk format of synthetic clips (see docs/synthetic_data.md) and its PoseTrack21 export.

A clip is a folder::

    <clip>/frames/000000.png ...   (or <clip>/frames.mp4)
    <clip>/gt.npz                  ground truth, arrays (frames, persons, ...)
    <clip>/meta.json               seed, fps, K, size, body model, generator version, ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from comotion.errors import InputError

FORMAT_VERSION = 1
GENERATOR_VERSION = "comotion-synth-1"
FRAME_PATTERN = "{:06d}.png"


@dataclass
class ClipGroundTruth:
    """Ground truth of one clip: ``T`` frames, ``P`` person slots, camera frame (OpenCV), metres
    and pixels.  Every per-person array holds values for all frames; ``present`` says in which
    frames the person is in the image.

    Attributes:
        ids: ``(P,)`` int32 person ids (1-based, unique within the clip).
        present: ``(P, T)`` bool, some pixel of the person's mesh (occlusion ignored) lies in the image.
        betas: ``(T, P, 10)`` float32 shape.
        pose: ``(T, P, 72)`` float32 axis-angle pose, root orientation in the camera frame.
        trans: ``(T, P, 3)`` float32 SMPL translation, camera frame, metres.
        keypoints_3d: ``(T, P, 27, 3)`` float32 CoMotion keypoints, camera frame, metres.
        keypoints_2d: ``(T, P, 27, 2)`` float32 their projection with ``K``, pixels.
        keypoints_visible: ``(T, P, 27)`` bool, inside the image and not hidden by another
            person or an occluder (depth buffer).
        coco_3d, coco_2d, coco_visible: the same for the 17 COCO keypoints.
        truncation: ``(T, P)`` float32 fraction of mesh vertices projecting outside the image.
        visible_pixels: ``(T, P)`` int32 pixels where the person is the nearest surface.
        visible_fraction: ``(T, P)`` float32 visible pixels / pixels the person would cover alone.
        box: ``(T, P, 4)`` float32 ``x1, y1, x2, y2`` pixels of the projected mesh, clipped to
            the image; NaN when not present.
        box_visible: ``(T, P, 4)`` float32 box of the visible pixels (pixel edges); NaN when none.
        K: ``(T, 2, 3)`` float32 intrinsics (constant over a video clip).
        camera_rotation: ``(T, 3, 3)`` float32 world-to-camera rotation (world: y up, ground y = 0).
        camera_translation: ``(T, 3)`` float32 world-to-camera translation, metres.
    """

    ids: np.ndarray
    present: np.ndarray
    betas: np.ndarray
    pose: np.ndarray
    trans: np.ndarray
    keypoints_3d: np.ndarray
    keypoints_2d: np.ndarray
    keypoints_visible: np.ndarray
    coco_3d: np.ndarray
    coco_2d: np.ndarray
    coco_visible: np.ndarray
    truncation: np.ndarray
    visible_pixels: np.ndarray
    visible_fraction: np.ndarray
    box: np.ndarray
    box_visible: np.ndarray
    K: np.ndarray
    camera_rotation: np.ndarray
    camera_translation: np.ndarray

    @property
    def num_frames(self) -> int:
        return self.present.shape[1]

    @property
    def num_persons(self) -> int:
        return self.present.shape[0]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Clip:
    """A clip read by :func:`load_clip`.

    Attributes:
        path: the clip folder.
        meta: the parsed ``meta.json``.
        gt: the ground truth.
    """

    path: Path
    meta: dict
    gt: ClipGroundTruth

    @property
    def num_frames(self) -> int:
        return self.gt.num_frames

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` pixels."""
        return int(self.meta["height"]), int(self.meta["width"])

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    def frame_paths(self) -> list[Path]:
        """PNG frame files in order (empty for an mp4 clip)."""
        if self.meta["frames"] != "png":
            return []
        return [self.path / "frames" / FRAME_PATTERN.format(t) for t in range(self.num_frames)]

    def frames(self) -> Iterator[np.ndarray]:
        """Frames as ``(H, W, 3)`` uint8 RGB, in order."""
        if self.meta["frames"] == "mp4":
            import av

            with av.open(str(self.path / "frames.mp4")) as container:
                for frame in container.decode(video=0):
                    yield frame.to_ndarray(format="rgb24")
            return
        from PIL import Image

        for path in self.frame_paths():
            with Image.open(path) as image:
                yield np.asarray(image.convert("RGB"))

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as ``(H, W, 3)`` uint8 RGB."""
        if self.meta["frames"] == "png":
            from PIL import Image

            with Image.open(self.frame_paths()[index]) as image:
                return np.asarray(image.convert("RGB"))
        for number, frame in enumerate(self.frames()):
            if number == index:
                return frame
        raise IndexError(index)


def write_clip(path: str | Path, frames: list[np.ndarray], gt: ClipGroundTruth, meta: dict, video: bool = False) -> Path:
    """Write one clip folder; ``meta`` is completed with the format fields.

    Args:
        frames: ``T`` images ``(H, W, 3)`` uint8 RGB.
        video: store ``frames.mp4`` (H.264, lossy) instead of lossless PNG files.
    """
    import cv2

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    if video:
        import av

        with av.open(str(path / "frames.mp4"), "w") as container:
            stream = container.add_stream("libx264", rate=round(meta["fps"]))
            stream.height, stream.width = height, width
            stream.pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
            stream.options = {"crf": "18"}
            for image in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
    else:
        (path / "frames").mkdir(exist_ok=True)
        for t, image in enumerate(frames):
            cv2.imwrite(str(path / "frames" / FRAME_PATTERN.format(t)), image[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
    np.savez_compressed(path / "gt.npz", **gt.to_arrays())
    full_meta = {
        "format_version": FORMAT_VERSION,
        "generator_version": GENERATOR_VERSION,
        **meta,
        "num_frames": len(frames),
        "num_persons": gt.num_persons,
        "height": height,
        "width": width,
        "frames": "mp4" if video else "png",
    }
    (path / "meta.json").write_text(json.dumps(full_meta, indent=1) + "\n")
    return path


def load_clip(path: str | Path) -> Clip:
    """Read a clip folder written by :func:`write_clip` (or ``comotion synth``)."""
    path = Path(path)
    meta_path, gt_path = path / "meta.json", path / "gt.npz"
    for required in (meta_path, gt_path):
        if not required.is_file():
            raise InputError(f"{path}: not a synthetic clip folder ({required.name} missing)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{meta_path}: invalid JSON ({err})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{meta_path}: format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}")
    with np.load(gt_path, allow_pickle=False) as data:
        missing = [f.name for f in fields(ClipGroundTruth) if f.name not in data.files]
        if missing:
            raise InputError(f"{gt_path}: missing array(s) {', '.join(missing)}")
        gt = ClipGroundTruth(**{f.name: data[f.name] for f in fields(ClipGroundTruth)})
    return Clip(path=path, meta=meta, gt=gt)


def tracker_style_boxes(box: np.ndarray, height: int, width: int) -> np.ndarray:
    """Tight mesh boxes ``(..., 4)`` ``x1, y1, x2, y2`` pixels padded as ``comotion track`` pads the
    boxes it writes (spec 8.5: both axes by 5 % of the longer side), then clamped into the image.

    Exported ground truth uses these so that a perfect tracker's boxes coincide with it: against
    the tight box the padded box of the true body overlaps only IoU ~0.75, which leaves little
    room under the evaluation's IoU 0.5 for the predicted ones.
    """
    import torch

    from comotion.geometry.camera import boxes_from_points, clamp_boxes_to_image
    from comotion.io.mot import BOX_PADDING

    corners = torch.as_tensor(np.asarray(box, np.float64)).reshape(-1, 2, 2)
    padded = clamp_boxes_to_image(boxes_from_points(corners, pad=BOX_PADDING), height, width)
    return padded.reshape(np.shape(box)).numpy().astype(np.float32)


def _box_polygon(box: np.ndarray) -> tuple[list[float], list[float]]:
    x1, y1, x2, y2 = (round(float(v), 2) for v in box)
    return [x1, x2, x2, x1], [y1, y1, y2, y2]


def annotated_people(gt: ClipGroundTruth, min_visible_fraction: float = 0.2, min_visible_keypoints: int = 3) -> np.ndarray:
    """Bool ``(T, P)``: present people visible enough to be annotated.

    A person needs ``visible_fraction >= min_visible_fraction`` and at least
    ``min_visible_keypoints`` visible CoMotion keypoints (which leaves out slivers at the image
    border, unoccluded but barely in the frame).
    """
    return (
        gt.present.T
        & (gt.visible_fraction >= min_visible_fraction)
        & (gt.keypoints_visible.sum(axis=-1) >= min_visible_keypoints)
    )


def export_posetrack(
    clip: Clip, dataset_root: str | Path, sequence: str, min_visible_fraction: float = 0.2, min_visible_keypoints: int = 3
) -> None:
    """Write ``clip`` as one sequence of a PoseTrack21-layout dataset (``split val``).

    Creates ``images/val/<seq>/NNNNNN.jpg``, ``posetrack_mot/mot/val/<seq>/image_info.json``,
    ``posetrack_mot/mot/val/<seq>/gt/gt.txt`` and ``posetrack_data/val/<seq>.json``.  Present
    people selected by :func:`annotated_people` are annotated (gt.txt flag 1); the boxes of the
    other present people become ignore regions of that image (as PoseTrack21 does for people
    it does not annotate).  Boxes are ``gt.box`` padded as the tracker pads its output boxes
    (:func:`tracker_style_boxes`); person ids are ``gt.ids``.
    """
    from PIL import Image

    if clip.meta.get("independent_frames"):
        raise InputError(f"{clip.path}: single-image clips have no tracks and cannot be exported as a sequence")
    root = Path(dataset_root)
    gt = clip.gt
    height, width = clip.size
    image_dir = root / "images" / "val" / sequence
    mot_dir = root / "posetrack_mot" / "mot" / "val" / sequence
    json_dir = root / "posetrack_data" / "val"
    for folder in (image_dir, mot_dir / "gt", json_dir):
        folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(clip.frames()):
        Image.fromarray(frame).save(image_dir / f"{t:06d}.jpg", quality=95)

    annotated = annotated_people(gt, min_visible_fraction, min_visible_keypoints)
    boxes = tracker_style_boxes(gt.box, height, width)
    image_info, images, annotations, lines = [], [], [], []
    for t in range(gt.num_frames):
        file_name = f"images/val/{sequence}/{t:06d}.jpg"
        ignored = [_box_polygon(boxes[t, p]) for p in np.nonzero(gt.present[:, t] & ~annotated[t])[0]]
        image_info.append(
            {
                "file_name": file_name,
                "id": t,
                "frame_id": t,
                "frame_index": t + 1,
                "vid_id": sequence,
                "ignore_regions_x": [x for x, _ in ignored],
                "ignore_regions_y": [y for _, y in ignored],
            }
        )
        images.append(
            {"file_name": file_name, "id": t, "frame_id": t, "frame_index": t + 1, "vid_id": sequence,
             "nframes": gt.num_frames, "is_labeled": True, "height": height, "width": width,
             "ignore_regions_x": [x for x, _ in ignored], "ignore_regions_y": [y for _, y in ignored]}
        )  # fmt: skip
        for p in np.nonzero(annotated[t])[0]:
            # Corners rounded first, so that x + w and y + h give back the rounded corners.
            x1, y1, x2, y2 = (round(float(v), 2) for v in boxes[t, p])
            w, h = round(x2 - x1, 2), round(y2 - y1, 2)
            lines.append(f"{t + 1},{int(gt.ids[p])},{x1:.2f},{y1:.2f},{w:.2f},{h:.2f},1,-1,-1,-1\n")
            keypoints = np.concatenate([gt.coco_2d[t, p], gt.coco_visible[t, p, :, None]], axis=1)
            annotations.append(
                {
                    "image_id": t,
                    "id": len(annotations),
                    "track_id": int(gt.ids[p]),
                    "person_id": int(gt.ids[p]),
                    "category_id": 1,
                    "keypoints": [round(float(v), 2) for v in keypoints.reshape(-1)],
                    "bbox": [x1, y1, w, h],
                }
            )
    (mot_dir / "image_info.json").write_text(json.dumps(image_info))
    (mot_dir / "gt" / "gt.txt").write_text("".join(lines))
    from comotion.io.posetrack import COCO_KEYPOINT_NAMES, COCO_SKELETON

    category = {
        "supercategory": "person", "id": 1, "name": "person",
        "keypoints": list(COCO_KEYPOINT_NAMES), "skeleton": [list(pair) for pair in COCO_SKELETON],
    }  # fmt: skip
    tmp = json_dir / f"{sequence}.json.tmp"
    tmp.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [category]}))
    os.replace(tmp, json_dir / f"{sequence}.json")
