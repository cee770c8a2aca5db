"""Readers for box-tracking evaluation data: the PoseTrack21 MOT layout and MOT result files.

Dataset layout (a PoseTrack21 root, or any folder in the same layout)::

    <root>/posetrack_mot/mot/val/<seq>/image_info.json   one entry per image, in temporal order
    <root>/posetrack_mot/mot/val/<seq>/gt/gt.txt         ground-truth boxes, MOT text format

``--dataset`` may name the root, ``posetrack_mot``, ``posetrack_mot/mot``, the ``val`` folder itself
or any folder whose sub-folders hold ``gt/gt.txt``.  Sequence folders without ``gt/gt.txt`` are not
evaluated (as in the official evaluation); entries that are not folders are ignored.

Conventions (those of the PoseTrack21 MOT evaluation, see docs/evaluation.md):

* ``image_info.json`` entry ``p`` (0-based) must have ``frame_index == p + 1``: frame ``f`` of
  ``gt.txt`` and of a result file is image ``f - 1``.  Its ignore polygons are
  ``ignore_regions_x`` / ``ignore_regions_y`` (list of polygons, a flat list = one polygon, empty
  inner lists skipped).
* ``gt.txt`` lines ``frame,id,x,y,w,h,flag,...``: kept only when ``flag`` is 1; ``x, y, w, h`` are
  truncated toward zero and the box is ``[x, y, x + w, y + h]``.
* result lines ``frame,id,x,y,w,h[,score,...]``: the four box numbers are stored plus one
  (CoMotion's writer adds 1), so the box is ``[x-1, y-1, (x-1)+(w-1), (y-1)+(h-1)]``.  Lines whose
  frame lies outside the sequence are ignored.  A missing or empty file means no predictions.
* Duplicate ``(frame, id)`` lines: the last one wins (ground truth and results).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from comotion.errors import InputError

MOT_SUBPATH = ("posetrack_mot", "mot", "val")
GT_RELPATH = Path("gt") / "gt.txt"
IMAGE_INFO_NAME = "image_info.json"


@dataclass
class FrameBoxes:
    """The boxes of one image: ``ids (N,)`` int64, ``boxes (N, 4)`` float64 ``[x1, y1, x2, y2]`` pixels."""

    ids: np.ndarray
    boxes: np.ndarray

    @staticmethod
    def empty() -> FrameBoxes:
        return FrameBoxes(np.zeros(0, np.int64), np.zeros((0, 4)))

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class TrackingSequence:
    """One evaluated sequence: per image (``num_images`` of them, in temporal order) the kept GT
    boxes and the ignore polygons (lists of ``(K, 2)`` vertex arrays, pixels)."""

    name: str
    gt: list[FrameBoxes]
    ignore_regions: list[list[np.ndarray]] = field(repr=False)

    @property
    def num_images(self) -> int:
        return len(self.gt)


# ----------------------------------------------------------------------------------------------
# Locating sequences


def _is_sequence_folder(path: Path) -> bool:
    try:
        return path.is_dir() and (path / GT_RELPATH).is_file()
    except OSError:  # unreadable entries are not sequences
        return False


def find_sequence_root(dataset: str | Path) -> Path:
    """The folder holding one sub-folder per sequence, found from a dataset root or any level of
    ``posetrack_mot/mot/val``."""
    dataset = Path(dataset)
    if not dataset.is_dir():
        raise InputError(f"{dataset}: dataset folder not found")
    candidates = [dataset / Path(*MOT_SUBPATH[i:]) for i in range(len(MOT_SUBPATH))] + [dataset]
    for candidate in candidates:
        if candidate.is_dir() and any(_is_sequence_folder(child) for child in candidate.iterdir()):
            return candidate
    raise InputError(f"{dataset}: no sequence folder with {GT_RELPATH} (expected {'/'.join(MOT_SUBPATH)}/<seq>/{GT_RELPATH})")


def list_sequences(root: Path) -> list[str]:
    """Sequence names (sorted) under a sequence root: the sub-folders that contain ``gt/gt.txt``."""
    return sorted(child.name for child in root.iterdir() if _is_sequence_folder(child))


# ----------------------------------------------------------------------------------------------
# image_info.json and ignore regions


def _polygon_list(values, path: Path, where: str) -> list[list]:
    """Normalise one ``ignore_regions_x``/``_y`` value to a list of coordinate lists."""
    if not isinstance(values, list):
        raise InputError(f"{path}: {where} must be a list, got {type(values).__name__}")
    if not values:
        return []
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return [values]
    if not all(isinstance(v, list) for v in values):
        raise InputError(f"{path}: {where} must be a list of polygons (lists of numbers)")
    return values


def parse_ignore_regions(xs, ys, path: Path, where: str) -> list[np.ndarray]:
    """Ignore polygons ``[(K, 2) array, ...]`` from the x and y coordinate lists of one image.

    A flat list of numbers is one polygon; an empty inner list is skipped.  A polygon with fewer than
    three vertices is an error (the official evaluation fails on it too).
    """
    polys_x = _polygon_list(xs, path, f"{where}.ignore_regions_x")
    polys_y = _polygon_list(ys, path, f"{where}.ignore_regions_y")
    if len(polys_x) != len(polys_y):
        raise InputError(f"{path}: {where}: {len(polys_x)} x polygons but {len(polys_y)} y polygons")
    regions = []
    for k, (px, py) in enumerate(zip(polys_x, polys_y)):
        if len(px) != len(py):
            raise InputError(f"{path}: {where} ignore region {k}: {len(px)} x but {len(py)} y coordinates")
        if not px:
            continue
        try:
            vertices = np.array([px, py], dtype=np.float64).T
        except (TypeError, ValueError):
            raise InputError(f"{path}: {where} ignore region {k}: coordinates must be numbers") from None
        if len(vertices) < 3:
            raise InputError(f"{path}: {where} ignore region {k} has {len(vertices)} vertices (need at least 3)")
        if not np.isfinite(vertices).all():
            raise InputError(f"{path}: {where} ignore region {k}: coordinates must be finite numbers")
        regions.append(vertices)
    return regions


def read_json(path: Path):
    """Parse a JSON file; a missing or unparsable file is an :class:`InputError` naming it."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None


def read_image_info(path: Path) -> list[list[np.ndarray]]:
    """Read ``image_info.json``: the ignore polygons of each image, in list order.

    Checks that ``frame_index`` numbers the images 1, 2, ... in list order.
    """
    entries = read_json(path)
    if not isinstance(entries, list):
        raise InputError(f"{path}: expected a JSON list of images, got {type(entries).__name__}")
    regions = []
    for position, entry in enumerate(entries):
        where = f"image {position}"
        if not isinstance(entry, dict):
            raise InputError(f"{path}: {where} is not an object")
        if "frame_index" not in entry:
            raise InputError(f"{path}: {where} has no field 'frame_index'")
        if entry["frame_index"] != position + 1 or isinstance(entry["frame_index"], bool):
            raise InputError(
                f"{path}: {where} has frame_index {entry['frame_index']!r}, expected {position + 1} (images numbered 1, 2, ... in list order)"
            )
        regions.append(
            parse_ignore_regions(entry.get("ignore_regions_x", []), entry.get("ignore_regions_y", []), path, where)
        )
    return regions


# ----------------------------------------------------------------------------------------------
# MOT text files


def _number(token: str, path: Path, line_number: int, column: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise InputError(f"{path}: line {line_number}: {column} is not a number ({token.strip()!r})") from None
    if not math.isfinite(value):
        raise InputError(f"{path}: line {line_number}: {column} is not finite ({token.strip()!r})")
    return value


def _integer(token: str, path: Path, line_number: int, column: str) -> int:
    value = _number(token, path, line_number, column)
    if value != int(value):
        raise InputError(f"{path}: line {line_number}: {column} must be an integer ({token.strip()!r})")
    return int(value)


def _mot_rows(path: Path, min_columns: int, column_names: tuple[str, ...]):
    """Yield ``(line_number, fields)`` for each line; blank lines inside the file are errors,
    trailing blank lines are allowed."""
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file") from None
    lines = text.rstrip().splitlines() if text.strip() else []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            raise InputError(f"{path}: line {line_number} is blank")
        fields = line.split(",")
        if len(fields) < min_columns:
            raise InputError(
                f"{path}: line {line_number} has {len(fields)} columns, expected at least {min_columns} ({','.join(column_names)})"
            )
        yield line_number, fields


def _frames_from_rows(rows: dict[tuple[int, int], list[float]], num_images: int) -> list[FrameBoxes]:
    per_frame: list[list[tuple[int, list[float]]]] = [[] for _ in range(num_images)]
    for (frame, track_id), box in rows.items():
        per_frame[frame - 1].append((track_id, box))
    return [
        FrameBoxes(np.array([i for i, _ in items], np.int64), np.array([b for _, b in items], np.float64).reshape(-1, 4))
        for items in per_frame
    ]


def read_gt_file(path: Path, num_images: int) -> list[FrameBoxes]:
    """Kept ground-truth boxes per image from ``gt.txt`` (frame ``f`` -> image ``f - 1``)."""
    names = ("frame", "id", "x", "y", "w", "h", "flag")
    rows: dict[tuple[int, int], list[float]] = {}
    for line_number, fields in _mot_rows(path, 7, names):
        frame = _integer(fields[0], path, line_number, "frame")
        person = _integer(fields[1], path, line_number, "id")
        x, y, w, h = (int(_number(fields[k], path, line_number, names[k])) for k in range(2, 6))
        flag = _number(fields[6], path, line_number, "flag")
        if not 1 <= frame <= num_images:
            raise InputError(f"{path}: line {line_number}: frame {frame} is not an image of the sequence (1..{num_images})")
        if flag != 1:
            continue
        rows.pop((frame, person), None)  # the last duplicate wins and takes the last position
        rows[(frame, person)] = [x, y, x + w, y + h]
    return _frames_from_rows(rows, num_images)


def read_result_file(path: Path | None, num_images: int) -> list[FrameBoxes]:
    """Predicted boxes per image from a MOT result file (``None``, missing or empty: no boxes).

    The stored ``x, y, w, h`` are decoded with the "+1" convention:
    ``[x-1, y-1, (x-1)+(w-1), (y-1)+(h-1)]``.  Frames outside ``1..num_images`` are ignored.
    """
    if path is None or not Path(path).is_file():
        return [FrameBoxes.empty() for _ in range(num_images)]
    names = ("frame", "id", "x", "y", "w", "h")
    rows: dict[tuple[int, int], list[float]] = {}
    for line_number, fields in _mot_rows(path, 6, names):
        frame = _integer(fields[0], path, line_number, "frame")
        track = _integer(fields[1], path, line_number, "id")
        x, y, w, h = (_number(fields[k], path, line_number, names[k]) - 1.0 for k in range(2, 6))
        if not 1 <= frame <= num_images:
            continue
        rows.pop((frame, track), None)
        rows[(frame, track)] = [x, y, x + w, y + h]
    return _frames_from_rows(rows, num_images)


def result_file_for(results_dir: Path, sequence: str) -> Path | None:
    """The result file of a sequence: ``<seq>`` first, then ``<seq>.txt``; ``None`` when absent."""
    for candidate in (results_dir / sequence, results_dir / f"{sequence}.txt"):
        if candidate.is_file():
            return candidate
    return None


def check_result_folder(results_dir: Path, sequences: list[str]) -> None:
    """Reject ``*.txt`` result files that name no sequence folder of the dataset (a typo would
    otherwise silently score that sequence as "no predictions")."""
    if not results_dir.is_dir():
        raise InputError(f"{results_dir}: results folder not found")
    known = set(sequences)
    unknown = sorted(p.name for p in results_dir.glob("*.txt") if p.is_file() and p.stem not in known)
    if unknown:
        raise InputError(f"{results_dir}: result file(s) for unknown sequence(s): {', '.join(unknown)}")


def read_sequence(root: Path, name: str) -> TrackingSequence:
    """Read one sequence folder (``image_info.json`` and ``gt/gt.txt``)."""
    folder = root / name
    regions = read_image_info(folder / IMAGE_INFO_NAME)
    gt = read_gt_file(folder / GT_RELPATH, len(regions))
    return TrackingSequence(name=name, gt=gt, ignore_regions=regions)
