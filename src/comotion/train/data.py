"""Training samples: one interface over every dataset, square crops with consistent intrinsics.

Every adapter returns a :class:`Sample` at the image's native size; :func:`crop_sample` then cuts
a square box per frame out of it and resizes it to the network resolution, moving the 2-D
keypoints and the intrinsics with the pixels (3-D targets are in the camera frame, which a crop
does not change).  The same crop makes the stage-2 pan/zoom clips out of single images
(:class:`PanZoomClips`).

Adapters (docs/training.md gives the exact on-disk layouts):

* :class:`SyntheticClips`: our ``comotion synth`` clips (video windows or single frames).
* :class:`SmplSequences`: BEDLAM-style SMPL ground truth, one npz per sequence.
* :class:`KeypointImages`: COCO keypoint JSON or PoseTrack JSON (2-D keypoints), optionally with
  an npz of SMPL pseudo-labels per annotation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from comotion.errors import InputError
from comotion.geometry.camera import default_intrinsics, project_points
from comotion.io.posetrack import COCO_FROM_KEYPOINTS27

NUM_KEYPOINTS = 27


@dataclass
class Sample:
    """One training example of ``T`` frames and ``P`` person slots (a slot is the same person in
    every frame).  After :func:`collate` every tensor gains a leading batch axis ``B``.

    Attributes:
        images: ``(T, 3, H, W)`` float RGB in [0, 1].
        K: ``(T, 2, 3)`` intrinsics of ``images``, pixels.
        valid: ``(T, P)`` bool, the person has annotations in this frame (losses apply).
        detectable: ``(T, P)`` bool, the person is visible enough to be a detection target.
        keypoints_2d: ``(T, P, 27, 2)`` pixels of ``images``.
        keypoints_2d_valid: ``(T, P, 27)`` bool, the point's 2-D position is known.
        keypoints_3d: ``(T, P, 27, 3)`` camera frame, metres (zeros without 3-D ground truth).
        pose: ``(T, P, 72)`` SMPL axis-angle pose.
        betas: ``(T, P, 10)`` SMPL shape.
        trans: ``(T, P, 3)`` SMPL translation, camera frame, metres.
        has_3d: ``(T, P)`` bool, ``keypoints_3d``, ``pose`` and ``trans`` are ground truth.
        has_betas: ``(T, P)`` bool, ``betas`` is ground truth (not a pseudo-label).
    """

    images: torch.Tensor
    K: torch.Tensor
    valid: torch.Tensor
    detectable: torch.Tensor
    keypoints_2d: torch.Tensor
    keypoints_2d_valid: torch.Tensor
    keypoints_3d: torch.Tensor
    pose: torch.Tensor
    betas: torch.Tensor
    trans: torch.Tensor
    has_3d: torch.Tensor
    has_betas: torch.Tensor

    @property
    def num_frames(self) -> int:
        return self.images.shape[-4]

    def to(self, device: torch.device | str) -> Sample:
        return Sample(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


_PERSON_FIELDS = ("valid", "detectable", "keypoints_2d", "keypoints_2d_valid", "keypoints_3d", "pose", "betas", "trans", "has_3d", "has_betas")


def empty_targets(num_frames: int, num_persons: int) -> dict[str, torch.Tensor]:
    """Zero/False person targets of the given size (adapters fill what they know)."""
    T, P = num_frames, num_persons
    return {
        "valid": torch.zeros(T, P, dtype=torch.bool),
        "detectable": torch.zeros(T, P, dtype=torch.bool),
        "keypoints_2d": torch.zeros(T, P, NUM_KEYPOINTS, 2),
        "keypoints_2d_valid": torch.zeros(T, P, NUM_KEYPOINTS, dtype=torch.bool),
        "keypoints_3d": torch.zeros(T, P, NUM_KEYPOINTS, 3),
        "pose": torch.zeros(T, P, 72),
        "betas": torch.zeros(T, P, 10),
        "trans": torch.zeros(T, P, 3),
        "has_3d": torch.zeros(T, P, dtype=torch.bool),
        "has_betas": torch.zeros(T, P, dtype=torch.bool),
    }


def collate(samples: list[Sample]) -> Sample:
    """Stack samples of equal ``T`` and image size; person slots are padded to the largest ``P``."""
    num_persons = max(s.valid.shape[1] for s in samples)
    stacked = {}
    for f in fields(Sample):
        values = [getattr(s, f.name) for s in samples]
        if f.name in _PERSON_FIELDS:
            values = [_pad_persons(v, num_persons) for v in values]
        stacked[f.name] = torch.stack(values)
    return Sample(**stacked)


def _pad_persons(value: torch.Tensor, num_persons: int) -> torch.Tensor:
    missing = num_persons - value.shape[1]
    if missing == 0:
        return value
    pad = value.new_zeros((value.shape[0], missing, *value.shape[2:]))
    return torch.cat([value, pad], dim=1)


# ----------------------------------------------------------------------------------------------
# Square crops


def crop_sample(sample: Sample, boxes: torch.Tensor, resolution: int) -> Sample:
    """Cut square boxes out of every frame and resize them to ``resolution`` pixels.

    Args:
        sample: unbatched sample at any image size.
        boxes: ``(T, 3)`` ``x0, y0, side`` in the sample's pixels; the box may extend past the
            image (black padding), as the letterbox of the inference preprocessing does.
        resolution: output side in pixels.

    The intrinsics follow the pixels exactly: ``u' = (u - x0) * s`` with ``s = resolution / side``
    holds for projections with the new K, so 3-D targets stay valid.
    """
    height, width = sample.images.shape[-2:]
    boxes = boxes.to(torch.float32)
    x0, y0, side = boxes[:, 0], boxes[:, 1], boxes[:, 2]
    scale = resolution / side  # (T,)
    # Output pixel centre j + 0.5 maps to input position x0 + (j + 0.5) / scale (continuous
    # coordinates); grid_sample wants it in [-1, 1] with align_corners=False.
    centres = (torch.arange(resolution, dtype=torch.float32) + 0.5)[None] / scale[:, None]  # (T, R)
    gx = (x0[:, None] + centres) / width * 2 - 1
    gy = (y0[:, None] + centres) / height * 2 - 1
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)  # (T, R, R, 2)
    images = F.grid_sample(sample.images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    K = sample.K.clone()
    K[:, :, :2] = sample.K[:, :, :2] * scale[:, None, None]
    K[:, 0, 2] = (sample.K[:, 0, 2] - x0) * scale
    K[:, 1, 2] = (sample.K[:, 1, 2] - y0) * scale
    offset = torch.stack([x0, y0], dim=-1)[:, None, None, :]
    keypoints_2d = (sample.keypoints_2d - offset) * scale[:, None, None, None]
    return Sample(
        images=images,
        K=K,
        keypoints_2d=keypoints_2d,
        **{name: getattr(sample, name) for name in _PERSON_FIELDS if name != "keypoints_2d"},
    )


def letterbox_box(height: int, width: int) -> torch.Tensor:
    """``(3,)`` the centred square box of side ``max(H, W)`` (the inference preprocessing)."""
    side = max(height, width)
    return torch.tensor([(width - side) / 2, (height - side) / 2, side], dtype=torch.float32)


def random_box(height: int, width: int, zoom: tuple[float, float], rng: np.random.Generator) -> torch.Tensor:
    """A random square box: side = letterbox side x U(zoom), centre anywhere that keeps the box
    overlapping the image by at least half its side."""
    side = max(height, width) * rng.uniform(*zoom)
    cx = rng.uniform(min(side / 2, width / 2), max(width - side / 2, width / 2))
    cy = rng.uniform(min(side / 2, height / 2), max(height - side / 2, height / 2))
    return torch.tensor([cx - side / 2, cy - side / 2, side], dtype=torch.float32)


def pan_zoom_boxes(height: int, width: int, num_frames: int, zoom: tuple[float, float], rng: np.random.Generator) -> torch.Tensor:
    """``(T, 3)`` boxes moving linearly from one random box to another: a virtual camera that
    pans and zooms over a still image."""
    start, end = random_box(height, width, zoom, rng), random_box(height, width, zoom, rng)
    alpha = torch.linspace(0, 1, num_frames)[:, None]
    return (1 - alpha) * start + alpha * end


def finalize_visibility(sample: Sample, min_keypoints: int = 4) -> Sample:
    """After a crop, a person is only a detection target if at least ``min_keypoints`` of its
    known 2-D points lie inside the image."""
    height, width = sample.images.shape[-2:]
    uv = sample.keypoints_2d
    inside = (uv[..., 0] > 0) & (uv[..., 0] < width) & (uv[..., 1] > 0) & (uv[..., 1] < height)
    enough = (inside & sample.keypoints_2d_valid).sum(-1) >= min_keypoints
    sample.detectable = sample.detectable & enough
    return sample


# ----------------------------------------------------------------------------------------------
# Image loading


def load_rgb(path: str | Path) -> torch.Tensor:
    """``(3, H, W)`` float in [0, 1] from an image file."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read image ({err})") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255.0


class TrainingDataset(Protocol):
    """Interface of every adapter: ``len(dataset)`` items, ``dataset.load(index) -> Sample`` at
    native image size with ``dataset.num_frames`` frames."""

    num_frames: int

    def __len__(self) -> int: ...

    def load(self, index: int) -> Sample: ...


# ----------------------------------------------------------------------------------------------
# Synthetic clips (comotion synth)


@lru_cache(maxsize=64)
def _cached_clip(path: str):
    from comotion.synth import load_clip

    return load_clip(path)


class SyntheticClips(TrainingDataset):
    """Windows of ``num_frames`` frames, ``frame_step`` apart, from ``comotion synth`` clips.

    Single-image clips (``meta.independent_frames``) only give one-frame items.  A person is
    ``valid`` where ``present``; ``detectable`` also needs ``visible_fraction >=
    min_visible_fraction``.  All 27 keypoints are exact, so all are ``keypoints_2d_valid``
    (occluded and out-of-frame points included: the network must place them too).

    Args:
        root: a folder of clip folders (or one clip folder).
        num_frames: frames per item.
        window_stride: frames between the starts of consecutive windows of a video clip.
        frame_step: take every ``frame_step``-th frame (a lower frame rate: people move further
            between the frames of an item, so an update module that lags behind them pays more).
    """

    def __init__(
        self,
        root: str | Path,
        num_frames: int = 1,
        window_stride: int = 4,
        min_visible_fraction: float = 0.1,
        frame_step: int = 1,
    ) -> None:
        if frame_step < 1:
            raise InputError(f"{root}: frame_step must be at least 1, got {frame_step}")
        root = Path(root)
        clip_dirs = [root] if (root / "gt.npz").is_file() else sorted(p.parent for p in root.glob("*/gt.npz"))
        if not clip_dirs:
            raise InputError(f"{root}: no synthetic clips (folders with gt.npz) found")
        self.num_frames = num_frames
        self.frame_step = frame_step
        self.min_visible_fraction = min_visible_fraction
        span = (num_frames - 1) * frame_step + 1
        self.items: list[tuple[str, int]] = []
        for clip_dir in clip_dirs:
            meta = json.loads((clip_dir / "meta.json").read_text())
            total = int(meta["num_frames"])
            if meta.get("independent_frames") and num_frames > 1:
                continue
            stride = 1 if num_frames == 1 else window_stride
            self.items += [(str(clip_dir), start) for start in range(0, total - span + 1, stride)]
        if not self.items:
            raise InputError(f"{root}: no clip has {num_frames} video frames {frame_step} apart")

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> Sample:
        clip_path, start = self.items[index]
        clip = _cached_clip(clip_path)
        gt = clip.gt
        window = np.arange(start, start + self.num_frames * self.frame_step, self.frame_step)
        present = torch.from_numpy(gt.present[:, window].T.copy())  # (T, P)
        keep = present.any(0)
        present = present[:, keep]

        def take(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array[window][:, keep.numpy()])).float()

        targets = {
            "valid": present,
            "detectable": present & (take(gt.visible_fraction) >= self.min_visible_fraction),
            "keypoints_2d": take(gt.keypoints_2d),
            "keypoints_2d_valid": present[..., None].expand(-1, -1, NUM_KEYPOINTS).clone(),
            "keypoints_3d": take(gt.keypoints_3d),
            "pose": take(gt.pose),
            "betas": take(gt.betas),
            "trans": take(gt.trans),
            "has_3d": present.clone(),
            "has_betas": present.clone(),
        }
        images = torch.stack([_clip_frame(clip, int(t)) for t in window])
        return Sample(images=images, K=torch.from_numpy(gt.K[window].copy()).float(), **targets)


def _clip_frame(clip, index: int) -> torch.Tensor:
    if clip.meta["frames"] == "png":
        return load_rgb(clip.frame_paths()[index])
    return torch.from_numpy(clip.frame(index).copy()).permute(2, 0, 1).float() / 255.0


# ----------------------------------------------------------------------------------------------
# BEDLAM-style SMPL sequences


class SmplSequences(TrainingDataset):
    """SMPL ground truth per sequence: ``root/*.npz``, each with

    * ``image_paths`` ``(F,)`` str, relative to the npz's folder;
    * ``K`` ``(F, 2, 3)`` or ``(F, 3, 3)`` (or one ``(2|3, 3)`` for all frames), pixels;
    * ``betas`` ``(F, P, 10)``, ``pose`` ``(F, P, 72)`` axis-angle, ``trans`` ``(F, P, 3)``
      camera frame (OpenCV), metres;
    * ``valid`` ``(F, P)`` bool (optional, default all true): the person is in the frame.

    Keypoints come from the body model given (the one the network is trained with), so the
    parameters must be for that model's layout (SMPL neutral, 10 betas).
    """

    def __init__(self, root: str | Path, body, num_frames: int = 1, window_stride: int = 4) -> None:
        root = Path(root)
        files = [root] if root.suffix == ".npz" else sorted(root.glob("*.npz"))
        if not files:
            raise InputError(f"{root}: no SMPL sequence npz files found")
        self.body = body
        self.num_frames = num_frames
        self.items: list[tuple[Path, int]] = []
        for path in files:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in ("image_paths", "K", "betas", "pose", "trans") if k not in data.files]
                if missing:
                    raise InputError(f"{path}: missing array(s) {', '.join(missing)}")
                total = len(data["image_paths"])
            stride = 1 if num_frames == 1 else window_stride
            self.items += [(path, start) for start in range(0, total - num_frames + 1, stride)]

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> Sample:
        path, start = self.items[index]
        window = slice(start, start + self.num_frames)
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        T = self.num_frames
        betas = torch.from_numpy(arrays["betas"][window]).float()
        num_persons = betas.shape[1]
        valid = torch.from_numpy(arrays["valid"][window]).bool() if "valid" in arrays else torch.ones(T, num_persons, dtype=torch.bool)
        K = torch.from_numpy(np.asarray(arrays["K"], dtype=np.float32))
        K = (K[window] if K.ndim == 3 else K.expand(T, *K.shape))[:, :2, :3].contiguous()
        pose = torch.from_numpy(arrays["pose"][window]).float()
        trans = torch.from_numpy(arrays["trans"][window]).float()
        with torch.no_grad():
            keypoints_3d = self.body(betas, pose, trans).keypoints
        targets = empty_targets(T, num_persons)
        targets.update(
            valid=valid,
            detectable=valid.clone(),
            keypoints_2d=project_points(keypoints_3d, K[:, None]),
            keypoints_2d_valid=valid[..., None].expand(-1, -1, NUM_KEYPOINTS).clone(),
            keypoints_3d=keypoints_3d,
            pose=pose,
            betas=betas,
            trans=trans,
            has_3d=valid.clone(),
            has_betas=valid.clone(),
        )
        images = torch.stack([load_rgb(path.parent / str(p)) for p in arrays["image_paths"][window]])
        return Sample(images=images, K=K, **targets)


# ----------------------------------------------------------------------------------------------
# COCO / PoseTrack keypoint JSON (+ optional SMPL pseudo-labels)


class KeypointImages(TrainingDataset):
    """2-D keypoint annotations in COCO format (``images``, ``annotations`` with 17 COCO
    ``keypoints`` ``[x, y, v] * 17``); PoseTrack JSON is the same format with ``vid_id`` /
    ``frame_id`` on images and ``track_id`` on annotations, which ``num_frames > 1`` uses to
    form clips (persons by ``track_id``).

    COCO points map onto their counterparts among the 27 CoMotion keypoints
    (``COCO_FROM_KEYPOINTS27``; the others stay invalid).  Crowd annotations and those with
    fewer than ``min_keypoints`` labelled points are skipped.

    Args:
        annotations: the JSON file.
        image_root: folder the images' ``file_name`` is relative to.
        pseudo_labels: optional npz with ``annotation_id`` ``(N,)``, ``betas`` ``(N, 10)``,
            ``pose`` ``(N, 72)``, ``trans`` ``(N, 3)`` (camera frame of the image's intrinsics:
            ``K`` ``(N, 2, 3)`` if given, else the default f = 2 max(H, W)) and optional
            ``valid`` ``(N,)`` bool (flagged labels, e.g. people in close proximity, are false).
            Pseudo-labelled people get 3-D targets from ``body`` but no betas loss.
    """

    def __init__(
        self,
        annotations: str | Path,
        image_root: str | Path,
        num_frames: int = 1,
        pseudo_labels: str | Path | None = None,
        body=None,
        min_keypoints: int = 4,
    ) -> None:
        annotations = Path(annotations)
        try:
            data = json.loads(annotations.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise InputError(f"{annotations}: cannot read keypoint JSON ({err})") from None
        if "images" not in data or "annotations" not in data:
            raise InputError(f"{annotations}: not a COCO/PoseTrack keypoint file (needs 'images' and 'annotations')")
        self.image_root = Path(image_root)
        self.num_frames = num_frames
        self.body = body
        self.images = {img["id"]: img for img in data["images"]}
        self.people: dict[int, list[dict]] = {}
        for ann in data["annotations"]:
            keypoints = ann.get("keypoints")
            if ann.get("iscrowd") or not keypoints or sum(v > 0 for v in keypoints[2::3]) < min_keypoints:
                continue
            self.people.setdefault(ann["image_id"], []).append(ann)
        self.labels: dict[int, dict[str, np.ndarray]] = {}
        if pseudo_labels is not None:
            if body is None:
                raise InputError("pseudo_labels need a body model to compute 3-D keypoints")
            self._read_pseudo_labels(Path(pseudo_labels))
        if num_frames == 1:
            self.items = [[image_id] for image_id in self.images if image_id in self.people]
        else:
            videos: dict[object, list[dict]] = {}
            for img in self.images.values():
                if "vid_id" not in img:
                    raise InputError(f"{annotations}: clips need PoseTrack images with 'vid_id' and 'frame_id'")
                videos.setdefault(img["vid_id"], []).append(img)
            self.items = []
            for frames in videos.values():
                ids = [img["id"] for img in sorted(frames, key=lambda img: img["frame_id"]) if img.get("is_labeled", True)]
                self.items += [ids[s : s + num_frames] for s in range(0, len(ids) - num_frames + 1, num_frames // 2 or 1)]
        if not self.items:
            raise InputError(f"{annotations}: no usable annotated images for {num_frames}-frame items")

    def _read_pseudo_labels(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as err:
            raise InputError(f"{path}: cannot read pseudo-label npz ({err})") from None
        missing = [k for k in ("annotation_id", "betas", "pose", "trans") if k not in arrays]
        if missing:
            raise InputError(f"{path}: missing array(s) {', '.join(missing)}")
        for row, ann_id in enumerate(arrays["annotation_id"].tolist()):
            if "valid" in arrays and not arrays["valid"][row]:
                continue
            self.labels[ann_id] = {k: arrays[k][row] for k in ("betas", "pose", "trans", "K") if k in arrays}

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> Sample:
        image_ids = self.items[index]
        frames = [self.images[i] for i in image_ids]
        anns = [self.people.get(i, []) for i in image_ids]
        # Person slots: track ids across a clip, annotation order within a single image.
        keys = sorted({a.get("track_id", a["id"]) for frame in anns for a in frame}) if len(frames) > 1 else [a["id"] for a in anns[0]]
        slot = {key: p for p, key in enumerate(keys)}
        targets = empty_targets(len(frames), len(keys))
        images = torch.stack([load_rgb(self.image_root / img["file_name"]) for img in frames])
        height, width = images.shape[-2:]
        K = default_intrinsics(height, width).expand(len(frames), 2, 3).clone()
        coco_slots = torch.tensor(COCO_FROM_KEYPOINTS27)
        with_labels: list[tuple[int, int, dict]] = []
        for t, frame_anns in enumerate(anns):
            for ann in frame_anns:
                p = slot[ann.get("track_id", ann["id"])] if len(frames) > 1 else slot[ann["id"]]
                coco = torch.tensor(ann["keypoints"], dtype=torch.float32).reshape(17, 3)
                targets["keypoints_2d"][t, p, coco_slots] = coco[:, :2]
                targets["keypoints_2d_valid"][t, p, coco_slots] = coco[:, 2] > 0
                targets["valid"][t, p] = targets["detectable"][t, p] = True
                if ann["id"] in self.labels:
                    with_labels.append((t, p, self.labels[ann["id"]]))
        if with_labels:
            index_t = torch.tensor([t for t, _, _ in with_labels])
            index_p = torch.tensor([p for _, p, _ in with_labels])
            params = {k: torch.from_numpy(np.stack([lab[k] for _, _, lab in with_labels])).float() for k in ("betas", "pose", "trans")}
            with torch.no_grad():
                keypoints_3d = self.body(params["betas"], params["pose"], params["trans"]).keypoints
            targets["keypoints_3d"][index_t, index_p] = keypoints_3d
            for k, v in params.items():
                targets[k][index_t, index_p] = v
            targets["has_3d"][index_t, index_p] = True
            if "K" in with_labels[0][2]:
                K[index_t] = torch.from_numpy(np.stack([lab["K"] for _, _, lab in with_labels])).float()[:, :2, :3]
        return Sample(images=images, K=K, **targets)


# ----------------------------------------------------------------------------------------------
# Image -> clip synthesis


class PanZoomClips(TrainingDataset):
    """Clips of ``num_frames`` frames made from one-frame items of another dataset by a camera
    that pans and zooms over the still image (stage 2).  The frames are repeated here; the
    per-frame boxes come from :func:`pan_zoom_boxes` when the sample is cropped."""

    def __init__(self, images: TrainingDataset, num_frames: int) -> None:
        if images.num_frames != 1:
            raise InputError("pan/zoom clips are made from single-frame items")
        self.images = images
        self.num_frames = num_frames
        self.is_pan_zoom = True

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> Sample:
        one = self.images.load(index)
        T = self.num_frames
        return Sample(**{f.name: getattr(one, f.name).expand(T, *getattr(one, f.name).shape[1:]).clone() for f in fields(Sample)})


def prepare_sample(
    dataset: TrainingDataset, index: int, resolution: int, zoom: tuple[float, float], seed: int, augment: bool = True
) -> Sample:
    """Load item ``index`` and crop it to the network resolution.

    With ``augment``, a random square box (zoom range ``zoom`` relative to the letterbox side)
    is drawn from ``seed``, shared by all frames of a video item and moving for pan/zoom clips;
    without, the letterbox of the inference preprocessing is used.
    """
    sample = dataset.load(index)
    T = sample.num_frames
    height, width = sample.images.shape[-2:]
    rng = np.random.default_rng(seed)
    if getattr(dataset, "is_pan_zoom", False):
        boxes = pan_zoom_boxes(height, width, T, zoom, rng)
    elif augment:
        boxes = random_box(height, width, zoom, rng).expand(T, 3)
    else:
        boxes = letterbox_box(height, width).expand(T, 3)
    return finalize_visibility(crop_sample(sample, boxes, resolution))
