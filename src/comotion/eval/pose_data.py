"""Readers for pose evaluation: ground truth in four formats and CoMotion's predictions.

Every ground-truth reader returns :class:`PoseGroundTruth` objects, one per sequence (or image set),
with one row per annotated (frame, person).  Frames are numbered from 0 in the order the tracker
sees them (see each reader); prediction rows refer to the same numbers.

Predictions (:func:`read_pose_predictions`): either a CoMotion results folder (``comotion track``
output, read with :func:`comotion.io.results.load_tracks`) or an ``.npz`` with

============== =============== ==========================================================
array          shape           meaning
============== =============== ==========================================================
frame_index    (L,) int        frame number, from 0
track_id       (L,) int        track (or detection) id
keypoints_2d   (L, 27, 2)      CoMotion keypoints projected to the image (pixels)
keypoints_3d   (L, 27, 3)      CoMotion keypoints, camera frame (metres); optional for 2D-only
coco_2d        (L, 17, 2)      COCO-17 keypoints (pixels); optional
============== =============== ==========================================================

When ``coco_2d`` is absent, COCO-17 keypoints are taken from the 27 CoMotion keypoints
(:func:`comotion.io.posetrack.coco_from_keypoints27`).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from comotion.errors import InputError
from comotion.eval.pose_metrics import keypoint_box
from comotion.eval.tracking_data import read_json

NUM_KEYPOINTS = 27
SMPL_BODY_JOINTS = 22  # the first 22 of CoMotion's 27 keypoints are SMPL joints 0..21
PELVIS = 0
# PoseTrack's keypoints 1 and 2 are head_bottom / head_top (COCO: eyes); ears are never annotated.
POSETRACK_NON_COCO_KEYPOINTS = (1, 2)


@dataclass
class PoseGroundTruth:
    """Annotated people of one sequence, one row per (frame, person).

    Attributes:
        name: sequence / file name.
        frame_index: ``(G,)`` frame number from 0.
        person_id: ``(G,)`` person id (track id, annotation id, ...).
        box: ``(G, 4)`` ``[x1, y1, x2, y2]`` pixels (PCK normaliser and oracle matching).
        keypoints_2d: ``(G, J, 2)`` pixels; ``valid_2d (G, J)`` the joints that count.
        keypoints_3d: ``(G, J3, 3)`` metres, camera frame, or None; ``valid_3d (G, J3)``.
        skeleton_2d: ``"coco17"`` (compared with COCO keypoints of the prediction) or
            ``"comotion27"`` / ``"smpl22"`` (the first 27 / 22 prediction keypoints).
        skeleton_3d: ``"comotion27"`` or ``"smpl22"``; the root (pelvis) is joint 0.
    """

    name: str
    frame_index: np.ndarray
    person_id: np.ndarray
    box: np.ndarray
    keypoints_2d: np.ndarray
    valid_2d: np.ndarray
    skeleton_2d: str
    keypoints_3d: np.ndarray | None = None
    valid_3d: np.ndarray | None = None
    skeleton_3d: str | None = None

    def __len__(self) -> int:
        return len(self.frame_index)


@dataclass
class PosePredictions:
    """Predicted people, one row per (frame, track): see the module docstring for the arrays."""

    frame_index: np.ndarray
    track_id: np.ndarray
    keypoints_2d: np.ndarray
    keypoints_3d: np.ndarray | None
    coco_2d: np.ndarray | None

    def __len__(self) -> int:
        return len(self.frame_index)

    def keypoints_for(self, skeleton: str) -> np.ndarray:
        """2D keypoints ``(L, J, 2)`` in a ground-truth skeleton."""
        if skeleton == "coco17":
            if self.coco_2d is not None:
                return self.coco_2d
            from comotion.io.posetrack import coco_from_keypoints27

            return coco_from_keypoints27(self.keypoints_2d)
        return self.keypoints_2d[:, : _joint_count(skeleton)]

    def keypoints_3d_for(self, skeleton: str, source: str) -> np.ndarray:
        if self.keypoints_3d is None:
            raise InputError(f"{source}: predictions have no keypoints_3d (needed for 3D metrics)")
        return self.keypoints_3d[:, : _joint_count(skeleton)]


def _joint_count(skeleton: str) -> int:
    return {"comotion27": NUM_KEYPOINTS, "smpl22": SMPL_BODY_JOINTS}[skeleton]


# ----------------------------------------------------------------------------------------------
# Helpers


def _load_json(path: Path) -> dict:
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object with 'images' and 'annotations'")
    return data


def _field(record: dict, name: str, path: Path, where: str):
    if name not in record:
        raise InputError(f"{path}: {where} has no field '{name}'")
    return record[name]


def _coco_keypoints(value, path: Path, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``[x, y, v] * 17`` -> keypoints ``(17, 2)``, labelled ``(17,)`` (v > 0)."""
    try:
        triplets = np.asarray(value, np.float64).reshape(17, 3)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {where}: 'keypoints' must be 51 numbers ([x, y, v] * 17)") from None
    return triplets[:, :2], triplets[:, 2] > 0


def _xywh_box(value, path: Path, where: str) -> np.ndarray:
    try:
        x, y, w, h = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {where}: 'bbox' must be 4 numbers [x, y, w, h]") from None
    return np.array([x, y, x + w, y + h])


def _keypoint_json(path: Path, kind: str) -> PoseGroundTruth:
    """COCO and PoseTrack JSON share the images/annotations layout."""
    data = _load_json(path)
    images = _field(data, "images", path, "file")
    annotations = _field(data, "annotations", path, "file")
    position = {}
    for number, image in enumerate(images):
        position[_field(image, "id", path, f"images[{number}]")] = number
    rows = []
    for number, ann in enumerate(annotations):
        where = f"annotations[{number}]"
        image_id = _field(ann, "image_id", path, where)
        if image_id not in position:
            raise InputError(f"{path}: {where}: image_id {image_id!r} is not in 'images'")
        if kind == "coco" and ann.get("iscrowd", 0):
            continue
        if "keypoints" not in ann:
            if kind == "posetrack":
                continue  # PoseTrack21 has box-only annotations
            raise InputError(f"{path}: {where} has no field 'keypoints'")
        keypoints, labelled = _coco_keypoints(ann["keypoints"], path, where)
        if kind == "posetrack":
            labelled[list(POSETRACK_NON_COCO_KEYPOINTS)] = False
        if not labelled.any():
            continue
        if "bbox" in ann:
            box = _xywh_box(ann["bbox"], path, where)
        else:
            box = keypoint_box(keypoints[None], labelled[None])[0]
        person = _field(ann, "track_id", path, where) if kind == "posetrack" else ann.get("id", number)
        rows.append((position[image_id], int(person), box, keypoints, labelled))
    return PoseGroundTruth(
        name=path.stem,
        frame_index=np.array([r[0] for r in rows], np.int64),
        person_id=np.array([r[1] for r in rows], np.int64),
        box=np.array([r[2] for r in rows], np.float64).reshape(-1, 4),
        keypoints_2d=np.array([r[3] for r in rows], np.float64).reshape(-1, 17, 2),
        valid_2d=np.array([r[4] for r in rows], bool).reshape(-1, 17),
        skeleton_2d="coco17",
    )


# ----------------------------------------------------------------------------------------------
# Ground-truth readers


def read_coco_keypoints(path: str | Path) -> PoseGroundTruth:
    """COCO person-keypoint JSON.  Frame ``i`` is the ``i``-th entry of ``images`` (file order);
    crowd annotations and people without labelled keypoints are skipped; keypoints with ``v > 0``
    count; ``person_id`` is the annotation ``id``."""
    return _keypoint_json(Path(path), "coco")


def read_posetrack(path: str | Path) -> PoseGroundTruth:
    """PoseTrack18/21 JSON of one video (images/annotations layout).  Frame ``i`` is the ``i``-th
    entry of ``images``; ``person_id`` is ``track_id``.  Keypoints 1 and 2 (head_bottom, head_top)
    have no COCO counterpart and are not scored; box-only annotations are skipped."""
    return _keypoint_json(Path(path), "posetrack")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler for 3DPW files: numpy arrays and builtins only (no code, no chumpy)."""

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "numpy" or (module, name) in (("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), ("_codecs", "encode")):
            return super().find_class(module, name)
        if module in ("builtins", "__builtin__") and name in ("object", "list", "dict", "tuple", "set", "frozenset"):
            return super().find_class("builtins", name)
        raise pickle.UnpicklingError(f"refusing to load class {module}.{name}")


@dataclass
class ThreeDPWSequence:
    """A 3DPW sequence file: per person ``p`` arrays over the ``F`` frames.

    ``betas[p] (10,)``, ``poses[p] (F, 72)`` and ``trans[p] (F, 3)`` (SMPL, world frame),
    ``joints[p] (F, 24, 3)`` world-frame joint positions, ``valid[p] (F,)``; per frame
    ``cam_poses (F, 4, 4)`` world-to-camera and ``image_index (F,)``; ``intrinsics (3, 3)``.
    """

    name: str
    betas: list[np.ndarray]
    poses: list[np.ndarray]
    trans: list[np.ndarray]
    joints: list[np.ndarray]
    valid: list[np.ndarray]
    cam_poses: np.ndarray
    intrinsics: np.ndarray
    image_index: np.ndarray


def read_3dpw_sequence(path: str | Path) -> ThreeDPWSequence:
    """Read a 3DPW ``sequenceFiles/<split>/<seq>.pkl`` (Python-2 latin-1 pickle of numpy arrays)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = _ArrayUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError, TypeError) as err:
        raise InputError(f"{path}: not a readable 3DPW sequence pickle ({err})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a dict, got {type(raw).__name__}")
    for name in ("poses", "trans", "betas", "cam_poses", "cam_intrinsics", "jointPositions"):
        _field(raw, name, path, "sequence")
    cam_poses = np.asarray(raw["cam_poses"], np.float64)
    num_frames = len(cam_poses)
    if cam_poses.shape != (num_frames, 4, 4):
        raise InputError(f"{path}: 'cam_poses' must have shape (F, 4, 4), got {cam_poses.shape}")
    people = len(raw["poses"])
    joints, valid = [], []
    for p in range(people):
        j = np.asarray(raw["jointPositions"][p], np.float64)
        if j.shape != (num_frames, 72):
            raise InputError(f"{path}: 'jointPositions'[{p}] must have shape ({num_frames}, 72), got {j.shape}")
        joints.append(j.reshape(num_frames, 24, 3))
        if "campose_valid" in raw:
            valid.append(np.asarray(raw["campose_valid"][p]).astype(bool).reshape(num_frames))
        else:
            valid.append(np.ones(num_frames, bool))
    image_index = np.asarray(raw.get("img_frame_ids", np.arange(num_frames)), np.int64).reshape(num_frames)
    return ThreeDPWSequence(
        name=str(raw.get("sequence", path.stem)),
        betas=[np.asarray(b, np.float64).reshape(-1)[:10] for b in raw["betas"]],
        poses=[np.asarray(x, np.float64).reshape(num_frames, 72) for x in raw["poses"]],
        trans=[np.asarray(x, np.float64).reshape(num_frames, 3) for x in raw["trans"]],
        joints=joints,
        valid=valid,
        cam_poses=cam_poses,
        intrinsics=np.asarray(raw["cam_intrinsics"], np.float64).reshape(3, 3),
        image_index=image_index,
    )


def read_3dpw(path: str | Path) -> PoseGroundTruth:
    """3DPW sequence as pose ground truth: the 22 SMPL body joints in the camera frame (metres),
    their projections (pixels) and the tight box around the projections.  Frame = image number
    (``img_frame_ids``); ``person_id`` = person index in the file; frames where ``campose_valid``
    is false are skipped."""
    seq = read_3dpw_sequence(path)
    rotation, translation = seq.cam_poses[:, :3, :3], seq.cam_poses[:, :3, 3]
    rows = []
    for p, (joints, valid) in enumerate(zip(seq.joints, seq.valid)):
        camera = np.einsum("fij,fkj->fki", rotation, joints[:, :SMPL_BODY_JOINTS]) + translation[:, None]
        uvw = camera @ seq.intrinsics.T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = uvw[..., :2] / uvw[..., 2:]
        for f in np.nonzero(valid)[0]:
            rows.append((seq.image_index[f], p, camera[f], uv[f]))
    keypoints_3d = np.array([r[2] for r in rows], np.float64).reshape(-1, SMPL_BODY_JOINTS, 3)
    keypoints_2d = np.array([r[3] for r in rows], np.float64).reshape(-1, SMPL_BODY_JOINTS, 2)
    in_front = keypoints_3d[..., 2] > 0
    return PoseGroundTruth(
        name=Path(path).stem,
        frame_index=np.array([r[0] for r in rows], np.int64),
        person_id=np.array([r[1] for r in rows], np.int64),
        box=keypoint_box(keypoints_2d, in_front),
        keypoints_2d=keypoints_2d,
        valid_2d=in_front,
        skeleton_2d="smpl22",
        keypoints_3d=keypoints_3d,
        valid_3d=np.ones(in_front.shape, bool),
        skeleton_3d="smpl22",
    )


SYNTHETIC_GT_NAME = "gt.npz"


def read_synthetic(path: str | Path) -> PoseGroundTruth:
    """A synthetic clip folder written by ``comotion synth`` (read with
    :func:`comotion.synth.clip.load_clip`; ``path`` may also name its ``gt.npz``).

    A (frame, person) counts when the person is ``present`` and at least one of its 27 keypoints is
    visible (``keypoints_visible``: inside the image, not occluded); 2D joints count where visible,
    3D joints all.  ``person_id`` = ``ids``; boxes = ``box`` (projected mesh, clipped to the image).
    """
    from comotion.synth.clip import load_clip

    path = Path(path)
    folder = path.parent if path.name == SYNTHETIC_GT_NAME else path
    gt = load_clip(folder).gt
    visible = np.asarray(gt.keypoints_visible, bool)  # (T, P, 27)
    counted = np.asarray(gt.present, bool).T & visible.any(axis=-1)  # (T, P)
    frames, slots = np.nonzero(counted)
    return PoseGroundTruth(
        name=folder.name,
        frame_index=frames.astype(np.int64),
        person_id=np.asarray(gt.ids, np.int64)[slots],
        box=gt.box[frames, slots].astype(np.float64),
        keypoints_2d=gt.keypoints_2d[frames, slots].astype(np.float64),
        valid_2d=visible[frames, slots],
        skeleton_2d="comotion27",
        keypoints_3d=gt.keypoints_3d[frames, slots].astype(np.float64),
        valid_3d=np.ones((len(frames), NUM_KEYPOINTS), bool),
        skeleton_3d="comotion27",
    )


GROUND_TRUTH_READERS = {
    "coco": (read_coco_keypoints, ".json"),
    "posetrack": (read_posetrack, ".json"),
    "3dpw": (read_3dpw, ".pkl"),
    "synthetic": (read_synthetic, SYNTHETIC_GT_NAME),
}


def find_ground_truth(path: str | Path, fmt: str) -> list[Path]:
    """The ground-truth files / clip folders named by ``path``: the path itself, or, for a folder,
    every file with the format's extension in it (synthetic: every sub-folder with ``gt.npz``)."""
    path = Path(path)
    if fmt not in GROUND_TRUTH_READERS:
        raise InputError(f"unknown ground-truth format {fmt!r} (choose from {', '.join(GROUND_TRUTH_READERS)})")
    suffix = GROUND_TRUTH_READERS[fmt][1]
    if fmt == "synthetic":
        if (path / SYNTHETIC_GT_NAME).is_file() or path.is_file():
            return [path]
        found = sorted(p for p in path.iterdir() if (p / SYNTHETIC_GT_NAME).is_file()) if path.is_dir() else []
    elif path.is_file():
        return [path]
    else:
        found = sorted(p for p in path.glob(f"*{suffix}") if p.is_file()) if path.is_dir() else []
    if not found:
        raise InputError(f"{path}: no {fmt} ground truth found")
    return found


def read_ground_truth(path: Path, fmt: str) -> PoseGroundTruth:
    """Read one ground-truth file / clip in format ``fmt``."""
    return GROUND_TRUTH_READERS[fmt][0](path)


# ----------------------------------------------------------------------------------------------
# Predictions


def _results_folder(path: Path) -> bool:
    return (path / "header.json").is_file() or (path / "tracks" / "header.json").is_file()


def read_pose_predictions(path: str | Path) -> PosePredictions:
    """Predictions from a CoMotion results folder or an ``.npz`` (module docstring)."""
    path = Path(path)
    if path.is_dir() and _results_folder(path):
        from comotion.io.results import load_tracks

        tracks = load_tracks(path, fields=["keypoints_2d", "keypoints_3d", "coco_2d"])
        arrays = {
            name: getattr(tracks, name)
            for name in ("frame_index", "track_id", "keypoints_2d", "keypoints_3d", "coco_2d")
            if getattr(tracks, name) is not None
        }
    else:
        try:
            with np.load(path) as data:
                arrays = {k: data[k] for k in data.files}
        except FileNotFoundError:
            raise InputError(f"{path}: predictions not found") from None
        except (OSError, ValueError, EOFError) as err:
            raise InputError(f"{path}: not a readable npz or results folder ({err})") from None
    for name in ("frame_index", "track_id", "keypoints_2d"):
        if name not in arrays:
            raise InputError(f"{path}: missing array '{name}'")
    rows = len(arrays["frame_index"])
    shapes = {"frame_index": (rows,), "track_id": (rows,), "keypoints_2d": (rows, NUM_KEYPOINTS, 2),
              "keypoints_3d": (rows, NUM_KEYPOINTS, 3), "coco_2d": (rows, 17, 2)}  # fmt: skip
    for name, shape in shapes.items():
        if name in arrays and arrays[name].shape != shape:
            raise InputError(f"{path}: '{name}' must have shape {shape}, got {arrays[name].shape}")
    return PosePredictions(
        frame_index=arrays["frame_index"].astype(np.int64),
        track_id=arrays["track_id"].astype(np.int64),
        keypoints_2d=arrays["keypoints_2d"].astype(np.float64),
        keypoints_3d=arrays["keypoints_3d"].astype(np.float64) if "keypoints_3d" in arrays else None,
        coco_2d=arrays["coco_2d"].astype(np.float64) if "coco_2d" in arrays else None,
    )


def find_predictions(pred: Path, name: str, single: bool) -> Path:
    """The prediction file for one ground-truth sequence: ``pred`` itself when there is a single
    sequence and ``pred`` is a file or results folder, otherwise ``pred/<name>.npz`` or ``pred/<name>/``."""
    if single and (pred.is_file() or _results_folder(pred)):
        return pred
    for candidate in (pred / f"{name}.npz", pred / name):
        if candidate.is_file() or (candidate.is_dir() and _results_folder(candidate)):
            return candidate
    raise InputError(f"{pred}: no predictions for sequence '{name}' (expected {name}.npz or a results folder {name}/)")
