"""The per-frame, per-track results file: written while tracking, readable at any moment.

Layout (a folder, by default ``OUTDIR/tracks/``)::

    header.json          what produced the file and the schema of every array (see docs/outputs.md)
    part-000000.npz      frames 0 .. n-1 of the run
    part-000001.npz      the next chunk, ...

Each part is a plain ``.npz`` with three tables, keys prefixed by the table name:

* ``track.*`` one row per (frame, track): ``frame_index``, ``track_id``, ``betas``, ``pose``,
  ``trans``, ``keypoints_3d``, ``keypoints_2d``, ``confidence`` and optionally ``coco_2d``;
* ``frame.*`` one row per processed frame: ``frame_index``, ``K``, ``image_size``;
* ``detection.*`` one row per detection: ``frame_index``, ``keypoints_2d``, ``conf_logit``.

Parts are written to a temporary name and renamed, so a part is either complete or absent: a
crash, ``Ctrl-C`` or ``kill -9`` loses at most the frames since the last flush (at most
``chunk_frames`` frames or ``flush_seconds`` seconds).  ``header.json`` says ``"complete": true``
only after a clean close.  Memory held by the writer is bounded by one chunk.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from comotion.errors import InputError

FORMAT_NAME = "comotion-tracks"
FORMAT_VERSION = 1
HEADER_NAME = "header.json"

# table -> field -> (dtype, per-row shape, description).  Units: metres (camera frame: x right,
# y down, z forward), pixels of the input frame, radians.
SCHEMA: dict[str, dict[str, tuple[str, tuple[int, ...], str]]] = {
    "track": {
        "frame_index": ("int64", (), "index of the processed frame, from 0"),
        "track_id": ("int64", (), "track id, from 1, never reused within a run"),
        "betas": ("float32", (10,), "body shape coefficients"),
        "pose": ("float32", (72,), "axis-angle rotations of 24 joints, root first (radians, camera frame)"),
        "trans": ("float32", (3,), "body translation, camera frame (metres)"),
        "keypoints_3d": ("float32", (27, 3), "22 body joints + nose, eyes, ears, camera frame (metres)"),
        "keypoints_2d": ("float32", (27, 2), "keypoints_3d projected with K (pixels)"),
        "confidence": ("float32", (), "moving average of the track's match score with detections, 0..1"),
        "coco_2d": ("float32", (17, 2), "COCO-17 keypoints projected with K (pixels); optional"),
    },
    "frame": {
        "frame_index": ("int64", (), "index of the processed frame, from 0"),
        "K": ("float32", (2, 3), "intrinsics [[fx, 0, cx], [0, fy, cy]] (pixels)"),
        "image_size": ("int32", (2,), "height, width (pixels)"),
    },
    "detection": {
        "frame_index": ("int64", (), "index of the processed frame, from 0"),
        "keypoints_2d": ("float32", (27, 2), "detected keypoints (pixels)"),
        "conf_logit": ("float32", (), "detection confidence logit (apply a sigmoid)"),
    },
}


def _as_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _write_json_atomic(path: Path, data: Mapping) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    # Paths, enums and other config values are recorded by their text.
    return str(value)


class TrackWriter:
    """Stream results to a :mod:`comotion.io.results` folder, one frame at a time.

    Args:
        path: the folder to create (existing parts in it are removed).
        header: metadata recorded in ``header.json`` (body model name, K, image size, fps,
            comotion version, config, source, ...); JSON-serialisable values.
        with_coco: also store ``coco_2d`` (every ``write_frame`` must then pass it).
        chunk_frames: frames per part file.
        flush_seconds: also flush a non-empty chunk after this many seconds (so slow runs and
            live streams reach the disk regularly).

    Use as a context manager: leaving the block normally marks the file complete; leaving it
    through an exception (including ``KeyboardInterrupt``) still writes the buffered frames.
    """

    def __init__(
        self,
        path: str | Path,
        header: Mapping,
        *,
        with_coco: bool = False,
        chunk_frames: int = 100,
        flush_seconds: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in list(self.path.glob("part-*.npz")) + list(self.path.glob("*.tmp")):
            stale.unlink()
        self.with_coco = with_coco
        self.chunk_frames = chunk_frames
        self.flush_seconds = flush_seconds
        schema = {table: dict(fields) for table, fields in SCHEMA.items()}
        if not with_coco:
            del schema["track"]["coco_2d"]
        self._schema = schema
        self.header = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            **header,
            "fields": {
                table: {name: {"dtype": d, "shape": list(s), "description": t} for name, (d, s, t) in fields.items()}
                for table, fields in schema.items()
            },
            "complete": False,
            "num_frames": 0,
            "num_rows": 0,
            "num_parts": 0,
        }
        self._buffer: dict[str, dict[str, list[np.ndarray]]] = {}
        self._reset_buffer()
        self._last_flush = time.monotonic()
        self._closed = False
        _write_json_atomic(self.path / HEADER_NAME, self.header)

    def _reset_buffer(self) -> None:
        self._buffer = {table: {name: [] for name in fields} for table, fields in self._schema.items()}
        self._buffered_frames = 0

    def _append(self, table: str, rows: Mapping[str, np.ndarray], count: int) -> None:
        for name, (dtype, shape, _) in self._schema[table].items():
            if name == "frame_index":
                continue
            if name not in rows:
                raise ValueError(f"{table} field '{name}' missing")
            value = (
                _as_numpy(rows[name]).astype(dtype, copy=False).reshape(-1, *shape)
                if count
                else np.zeros((0, *shape), dtype)
            )
            if value.shape[0] != count:
                raise ValueError(f"{table} field '{name}' has {value.shape[0]} rows, expected {count}")
            self._buffer[table][name].append(value)

    def write_frame(
        self,
        frame_index: int,
        K,
        image_size: tuple[int, int],
        tracks: Mapping[str, object],
        detections: Mapping[str, object] | None = None,
    ) -> None:
        """Buffer one processed frame; flush a part when the chunk is full or old enough.

        Args:
            frame_index: the processed-frame counter.
            K: ``(2, 3)`` intrinsics of this frame.
            image_size: ``(height, width)``.
            tracks: arrays with N rows for the N tracks output in this frame: ``track_id (N,)``,
                ``betas (N, 10)``, ``pose (N, 72)``, ``trans (N, 3)``, ``keypoints_3d (N, 27, 3)``,
                ``keypoints_2d (N, 27, 2)``, ``confidence (N,)`` [, ``coco_2d (N, 17, 2)``].
            detections: ``keypoints_2d (M, 27, 2)``, ``conf_logit (M,)``; ``None`` = none.
        """
        if self._closed:
            raise RuntimeError("write_frame on a closed TrackWriter")
        num_tracks = int(_as_numpy(tracks["track_id"]).reshape(-1).shape[0])
        self._append("track", tracks, num_tracks)
        self._buffer["track"]["frame_index"].append(np.full(num_tracks, frame_index, np.int64))
        self._append("frame", {"K": K, "image_size": np.asarray(image_size)}, 1)
        self._buffer["frame"]["frame_index"].append(np.array([frame_index], np.int64))
        if detections is None:
            detections = {"keypoints_2d": np.zeros((0, 27, 2)), "conf_logit": np.zeros(0)}
        num_detections = int(_as_numpy(detections["conf_logit"]).reshape(-1).shape[0])
        self._append("detection", detections, num_detections)
        self._buffer["detection"]["frame_index"].append(np.full(num_detections, frame_index, np.int64))
        self._buffered_frames += 1
        self.header["num_frames"] += 1
        self.header["num_rows"] += num_tracks
        if self._buffered_frames >= self.chunk_frames or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the buffered frames as the next part (atomically) and update the header."""
        self._last_flush = time.monotonic()
        if not self._buffered_frames:
            return
        arrays = {
            f"{table}.{name}": np.concatenate(chunks)
            for table, fields in self._buffer.items()
            for name, chunks in fields.items()
        }
        part = self.path / f"part-{self.header['num_parts']:06d}.npz"
        tmp = part.with_name(part.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, part)
        self.header["num_parts"] += 1
        self._reset_buffer()
        _write_json_atomic(self.path / HEADER_NAME, self.header)

    def close(self, complete: bool = True) -> None:
        """Flush what is buffered; ``complete=True`` marks the results as a finished run."""
        if self._closed:
            return
        self.flush()
        self.header["complete"] = bool(complete)
        _write_json_atomic(self.path / HEADER_NAME, self.header)
        self._closed = True

    def __enter__(self) -> "TrackWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(complete=exc_type is None)


# ----------------------------------------------------------------------------------------------
# Reading


@dataclass
class FrameTable:
    """Per processed frame: ``frame_index (F,)``, ``K (F, 2, 3)`` pixels, ``image_size (F, 2)`` (H, W)."""

    frame_index: np.ndarray
    K: np.ndarray
    image_size: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_index)


@dataclass
class DetectionTable:
    """Per detection: ``frame_index (D,)``, ``keypoints_2d (D, 27, 2)`` pixels, ``conf_logit (D,)``."""

    frame_index: np.ndarray
    keypoints_2d: np.ndarray
    conf_logit: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_index)


@dataclass
class TrackResults:
    """Loaded results: one row per (frame, track), plus the frame and detection tables.

    Row arrays (R rows; fields not requested from :func:`load_tracks` are ``None``):
    ``frame_index (R,)``, ``track_id (R,)``, ``betas (R, 10)``, ``pose (R, 72)`` radians,
    ``trans (R, 3)`` metres, ``keypoints_3d (R, 27, 3)`` metres (camera frame),
    ``keypoints_2d (R, 27, 2)`` pixels, ``confidence (R,)``, ``coco_2d (R, 17, 2)`` pixels or ``None``.
    """

    header: dict
    frame_index: np.ndarray
    track_id: np.ndarray
    betas: np.ndarray | None = None
    pose: np.ndarray | None = None
    trans: np.ndarray | None = None
    keypoints_3d: np.ndarray | None = None
    keypoints_2d: np.ndarray | None = None
    confidence: np.ndarray | None = None
    coco_2d: np.ndarray | None = None
    frames: FrameTable | None = field(default=None, repr=False)
    detections: DetectionTable | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.frame_index)

    @property
    def complete(self) -> bool:
        """True when the run that wrote the file finished cleanly."""
        return bool(self.header.get("complete"))

    @property
    def track_ids(self) -> np.ndarray:
        """Distinct track ids, ascending."""
        return np.unique(self.track_id)

    def select(self, mask: np.ndarray) -> "TrackResults":
        """The rows where ``mask`` (R,) is true (frame and detection tables are kept)."""
        rows = {name: None if getattr(self, name) is None else getattr(self, name)[mask] for name in SCHEMA["track"]}
        return replace(self, **rows)

    def track(self, track_id: int) -> "TrackResults":
        """The rows of one track, in frame order."""
        return self.select(self.track_id == track_id)


def _header_path(path: Path) -> Path:
    for candidate in (path / HEADER_NAME, path / "tracks" / HEADER_NAME):
        if candidate.is_file():
            return candidate
    raise InputError(f"{path}: not a comotion results folder (no {HEADER_NAME})")


def read_header(path: str | Path) -> dict:
    """The ``header.json`` of a results folder (or of ``path/tracks``)."""
    header_path = _header_path(Path(path))
    try:
        header = json.loads(header_path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{header_path}: unreadable header ({err})") from None
    if header.get("format") != FORMAT_NAME:
        raise InputError(f"{header_path}: not a {FORMAT_NAME} header")
    return header


def iter_parts(path: str | Path, fields: list[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Yield each part's arrays (``"track.pose"``, ``"frame.K"``, ...) in order, one part at a time.

    ``fields`` restricts the ``track.*`` arrays read (``frame_index`` and ``track_id`` always are).
    """
    folder = _header_path(Path(path)).parent
    wanted = None if fields is None else {"frame_index", "track_id", *fields}
    for part in sorted(folder.glob("part-*.npz")):
        try:
            with np.load(part) as data:
                yield {
                    key: data[key]
                    for key in data.files
                    if wanted is None or not key.startswith("track.") or key.split(".", 1)[1] in wanted
                }
        except (OSError, ValueError, EOFError) as err:
            raise InputError(f"{part}: unreadable results part ({err})") from None


def load_tracks(path: str | Path, fields: list[str] | None = None) -> TrackResults:
    """Load a results folder written by :class:`TrackWriter` (complete or interrupted).

    Args:
        path: the results folder, or an output folder containing ``tracks/``.
        fields: track fields to load (default: all); ``frame_index`` and ``track_id`` always are.
    """
    header = read_header(path)
    schema = header["fields"]
    unknown = set(fields or ()) - set(SCHEMA["track"])
    if unknown:
        raise InputError(f"unknown track field(s): {', '.join(sorted(unknown))}")
    chunks: dict[str, list[np.ndarray]] = {}
    for arrays in iter_parts(path, fields):
        for key, value in arrays.items():
            chunks.setdefault(key, []).append(value)

    def column(table: str, name: str) -> np.ndarray | None:
        if name not in schema.get(table, {}):
            return None
        if f"{table}.{name}" in chunks:
            return np.concatenate(chunks[f"{table}.{name}"])
        spec = schema[table][name]
        return np.zeros((0, *spec["shape"]), spec["dtype"])

    names = SCHEMA["track"] if fields is None else {"frame_index", "track_id", *fields}
    rows = {name: column("track", name) for name in names}
    return TrackResults(
        header=header,
        **rows,
        frames=FrameTable(*(column("frame", n) for n in SCHEMA["frame"])),
        detections=DetectionTable(*(column("detection", n) for n in SCHEMA["detection"])),
    )
