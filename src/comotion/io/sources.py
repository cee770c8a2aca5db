"""Frame sources: video files, image folders, single images, webcams and network streams.

Every source is an iterable of :class:`Frame` = ``(index, image, K)``:

* ``index``: counter of *yielded* frames from 0 (as the reference numbers frames in its outputs;
  the frame number in the source is ``info.start + index * info.stride``);
* ``image``: ``(3, H, W)`` uint8 RGB tensor, rotation metadata already applied;
* ``K``: ``(2, 3)`` float32 intrinsics ``[[fx, 0, cx], [0, fy, cy]]`` in pixels of that image.

Frames are decoded lazily, one at a time, so memory does not grow with the length of the input.
Problems with the input (missing, empty, undecodable, no frames) raise a one-line
:class:`~comotion.errors.InputError` naming the file when the source is opened.

Use :func:`open_source` to pick the right kind from a path, folder, camera index or URL.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import torch

from comotion.errors import InputError
from comotion.io.images import IMAGE_SUFFIXES, array_to_rgb_uint8, hwc_to_tensor, is_image_path, read_image

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class Frame(NamedTuple):
    """One decoded frame: yielded-frame counter, ``(3, H, W)`` uint8 RGB image, ``(2, 3)`` K."""

    index: int
    image: torch.Tensor
    K: torch.Tensor


@dataclass(frozen=True)
class SourceInfo:
    """What is known about a source before reading it.

    Attributes:
        name: the path, camera index or URL as given.
        kind: ``"video"``, ``"images"``, ``"image"`` or ``"stream"``.
        height, width: size of the first frame after rotation (pixels).
        fps: frames per second of the *yielded* frames (source rate / stride), ``None`` if unknown.
        num_frames: number of frames the source will yield, ``None`` if unknown (streams, some
            containers).
        start, stride: frame ``index`` comes from source frame ``start + index * stride``.
    """

    name: str
    kind: str
    height: int
    width: int
    fps: float | None
    num_frames: int | None
    start: int = 0
    stride: int = 1


@dataclass(frozen=True)
class Intrinsics:
    """How to obtain K for a frame: explicit ``fx, fy, cx, cy``, a horizontal field of view, or the
    reference default (``f = 2 * max(H, W)``, principal point at the image centre)."""

    fx: float | None = None
    fy: float | None = None
    cx: float | None = None
    cy: float | None = None
    fov_deg: float | None = None

    @classmethod
    def parse(cls, text: str | None = None, fov_deg: float | None = None) -> "Intrinsics":
        """From a ``"fx,fy,cx,cy"`` string and/or a horizontal field of view in degrees (not both)."""
        if text is not None and fov_deg is not None:
            raise InputError("give either intrinsics fx,fy,cx,cy or a field of view, not both")
        if fov_deg is not None:
            if not 0.0 < fov_deg < 180.0:
                raise InputError(f"field of view must be between 0 and 180 degrees, got {fov_deg}")
            return cls(fov_deg=float(fov_deg))
        if text is None:
            return cls()
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            values = []
        if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[0] <= 0 or values[1] <= 0:
            raise InputError(f"intrinsics must be four numbers fx,fy,cx,cy with fx, fy > 0, got {text!r}")
        return cls(*values)

    def matrix(self, height: int, width: int) -> torch.Tensor:
        """``(2, 3)`` float32 K for a ``height x width`` image."""
        if self.fx is not None:
            fx, fy, cx, cy = self.fx, self.fy, self.cx, self.cy
        elif self.fov_deg is not None:
            fx = fy = (width / 2.0) / math.tan(math.radians(self.fov_deg) / 2.0)
            cx, cy = width / 2.0, height / 2.0
        else:
            fx = fy = 2.0 * max(height, width)
            cx, cy = width / 2.0, height / 2.0
        return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy]], dtype=torch.float32)


def _check_range(start: int, max_frames: int | None, stride: int) -> None:
    if start < 0:
        raise InputError(f"start must be >= 0, got {start}")
    if stride < 1:
        raise InputError(f"stride must be >= 1, got {stride}")
    if max_frames is not None and max_frames < 0:
        raise InputError(f"max-frames must be >= 0, got {max_frames}")


def _yield_count(total: int | None, start: int, max_frames: int | None, stride: int) -> int | None:
    if total is None:
        return max_frames if max_frames == 0 else None
    count = max(0, -(-(total - start) // stride))
    return count if max_frames is None else min(count, max_frames)


class FrameSource:
    """Base class: an iterable of :class:`Frame` with a :class:`SourceInfo`."""

    info: SourceInfo

    def __init__(self, intrinsics: Intrinsics | None = None) -> None:
        self.intrinsics = intrinsics or Intrinsics()

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def __len__(self) -> int:
        if self.info.num_frames is None:
            raise TypeError(f"{self.info.name}: number of frames is unknown")
        return self.info.num_frames

    def _frame(self, index: int, rgb: np.ndarray) -> Frame:
        height, width = rgb.shape[:2]
        return Frame(index, hwc_to_tensor(rgb), self.intrinsics.matrix(height, width))


# ----------------------------------------------------------------------------------------------
# Video files (PyAV)


def _quarter_turns(rotation: float) -> int:
    """Counter-clockwise quarter turns (0..3) of a display-matrix rotation in degrees."""
    return round(rotation / 90.0) % 4


def _rotated(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display-matrix rotation (PyAV's ``frame.rotation``, counter-clockwise degrees)."""
    quarter_turns = _quarter_turns(rotation)
    return np.ascontiguousarray(np.rot90(rgb, k=quarter_turns)) if quarter_turns else rgb


# Below this start frame, decoding from the beginning costs less than seeking would save.
SEEK_MIN_FRAMES = 50


class VideoSource(FrameSource):
    """A video file decoded with PyAV (any container/codec FFmpeg reads), rotation applied.

    Frames between strides are decoded but not converted.  A ``start`` beyond
    ``SEEK_MIN_FRAMES`` seeks to the preceding key frame instead of decoding everything before it.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        start: int = 0,
        max_frames: int | None = None,
        stride: int = 1,
        intrinsics: Intrinsics | None = None,
    ) -> None:
        super().__init__(intrinsics)
        _check_range(start, max_frames, stride)
        self.path = Path(path)
        self.start, self.max_frames, self.stride = start, max_frames, stride
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such video file")
        if self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: video file is empty")
        with self._open() as container:
            stream = container.streams.video[0]
            total = stream.frames or None
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) / stride if rate else None
            first = next(self._decode(container), None)
        if first is None:
            raise InputError(f"{self.path}: video has no frames")
        height, width = first.height, first.width
        if _quarter_turns(first.rotation) % 2:
            height, width = width, height
        if total is not None and start >= total:
            raise InputError(f"{self.path}: start frame {start} is past the end ({total} frames)")
        self.info = SourceInfo(
            str(self.path), "video", height, width, fps, _yield_count(total, start, max_frames, stride), start, stride
        )

    def _open(self):
        import av

        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, UnicodeDecodeError) as err:
            reason = getattr(err, "strerror", None) or str(err)
            raise InputError(f"{self.path}: cannot open video ({reason})".splitlines()[0]) from None
        if not container.streams.video:
            container.close()
            raise InputError(f"{self.path}: file has no video stream")
        container.streams.video[0].thread_type = "AUTO"
        return container

    def _decode(self, container):
        import av

        try:
            yield from container.decode(video=0)
        except av.error.FFmpegError as err:
            reason = getattr(err, "strerror", None) or str(err)
            raise InputError(f"{self.path}: cannot decode video ({reason})".splitlines()[0]) from None

    def _numbered(self, container) -> Iterator[tuple[int, object]]:
        """``(source frame number, frame)`` pairs, possibly starting after frame 0.

        For a late ``start`` the container seeks to the key frame before it; the key frame's
        number follows from its timestamp (constant-rate video).  If the timestamp is missing or
        lies beyond ``start`` (an inexact index), decoding restarts from the first frame.
        """
        stream = container.streams.video[0]
        rate, time_base = stream.average_rate, stream.time_base
        if self.start >= SEEK_MIN_FRAMES and rate and time_base:
            origin = stream.start_time or 0
            container.seek(origin + int(self.start / rate / time_base), stream=stream, backward=True)
            frames = self._decode(container)
            first = next(frames, None)
            if first is not None and first.pts is not None:
                number = round(float((first.pts - origin) * time_base * rate))
                if 0 <= number <= self.start:
                    yield number, first
                    yield from enumerate(frames, start=number + 1)
                    return
            container.seek(origin, stream=stream, backward=True)
        yield from enumerate(self._decode(container))

    def __iter__(self) -> Iterator[Frame]:
        if self.max_frames == 0:
            return
        with self._open() as container:
            yielded = 0
            for number, av_frame in self._numbered(container):
                if number < self.start or (number - self.start) % self.stride:
                    continue
                rgb = _rotated(av_frame.to_ndarray(format="rgb24"), av_frame.rotation)
                yield self._frame(yielded, rgb)
                yielded += 1
                if self.max_frames is not None and yielded >= self.max_frames:
                    return


# ----------------------------------------------------------------------------------------------
# Image folders and single images


def natural_key(path: Path) -> list:
    """Sort key that orders ``frame2.png`` before ``frame10.png``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class ImageFolderSource(FrameSource):
    """The images in a folder (``.jpg .jpeg .png .bmp .webp``, any case), naturally sorted.

    Images may differ in size; each frame gets K for its own size.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        start: int = 0,
        max_frames: int | None = None,
        stride: int = 1,
        intrinsics: Intrinsics | None = None,
        fps: float | None = None,
    ) -> None:
        super().__init__(intrinsics)
        _check_range(start, max_frames, stride)
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: no such folder")
        files = sorted((p for p in self.folder.iterdir() if p.is_file() and is_image_path(p)), key=natural_key)
        if not files:
            raise InputError(f"{self.folder}: folder has no images ({', '.join(IMAGE_SUFFIXES)})")
        selected = files[start::stride]
        if max_frames is not None:
            selected = selected[:max_frames]
        if not selected and max_frames != 0:
            raise InputError(f"{self.folder}: start frame {start} is past the end ({len(files)} images)")
        self.files = selected
        height, width = read_image(selected[0]).shape[1:] if selected else read_image(files[0]).shape[1:]
        self.info = SourceInfo(
            str(self.folder),
            "images",
            height,
            width,
            None if fps is None else fps / stride,
            len(selected),
            start,
            stride,
        )

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.files):
            image = read_image(path)
            yield Frame(index, image, self.intrinsics.matrix(*image.shape[1:]))


class ImageSource(FrameSource):
    """A single image file, one frame (``comotion detect``'s input)."""

    def __init__(self, path: str | Path, *, intrinsics: Intrinsics | None = None) -> None:
        super().__init__(intrinsics)
        self.path = Path(path)
        self.image = read_image(self.path)
        height, width = self.image.shape[1:]
        self.info = SourceInfo(str(self.path), "image", height, width, None, 1)

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(0, self.image, self.intrinsics.matrix(*self.image.shape[1:]))


# ----------------------------------------------------------------------------------------------
# Webcams and network streams (OpenCV)


class StreamSource(FrameSource):
    """A camera index (``0``) or stream URL (rtsp/http/...) read with OpenCV, frame by frame.

    The source yields frames until the stream ends or ``max_frames`` were yielded; iterating a
    second time reads on from where the stream is (live sources cannot rewind).
    """

    def __init__(
        self,
        target: int | str,
        *,
        start: int = 0,
        max_frames: int | None = None,
        stride: int = 1,
        intrinsics: Intrinsics | None = None,
    ) -> None:
        import cv2

        super().__init__(intrinsics)
        _check_range(start, max_frames, stride)
        self.target, self.start, self.max_frames, self.stride = target, start, max_frames, stride
        self.capture = cv2.VideoCapture(target)
        if not self.capture.isOpened():
            raise InputError(f"{target}: cannot open camera or stream")
        for _ in range(start):
            if not self.capture.grab():
                raise InputError(f"{target}: stream ended before start frame {start}")
        ok, bgr = self.capture.read()
        if not ok or bgr is None:
            raise InputError(f"{target}: stream delivered no frames")
        self._pending = bgr
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        total = count if count > 0 and not isinstance(target, int) else None
        self.info = SourceInfo(
            str(target),
            "stream",
            bgr.shape[0],
            bgr.shape[1],
            fps / stride if fps and fps > 0 else None,
            _yield_count(total, start, max_frames, stride),
            start,
            stride,
        )

    def _read(self) -> np.ndarray | None:
        if self._pending is not None:
            bgr, self._pending = self._pending, None
            return bgr
        for _ in range(self.stride - 1):
            if not self.capture.grab():
                return None
        ok, bgr = self.capture.read()
        return bgr if ok else None

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while self.max_frames is None or index < self.max_frames:
            bgr = self._read()
            if bgr is None:
                break
            yield self._frame(index, array_to_rgb_uint8(bgr[..., ::-1] if bgr.ndim == 3 and bgr.shape[2] == 3 else bgr))
            index += 1
        self.capture.release()


def is_stream_spec(spec: str) -> bool:
    """True for camera indices (``"0"``) and URLs with a streaming scheme."""
    return spec.isdigit() or spec.lower().startswith(STREAM_SCHEMES)


def open_source(
    spec: str | Path,
    *,
    start: int = 0,
    max_frames: int | None = None,
    stride: int = 1,
    intrinsics: Intrinsics | None = None,
    folder_fps: float | None = None,
) -> FrameSource:
    """Open ``spec`` as the matching frame source (``folder_fps``: frame rate of an image folder,
    which has none of its own; videos and streams report theirs).

    * a camera index (``"0"``) or an ``rtsp://``/``http(s)://``/... URL -> :class:`StreamSource`
    * a folder -> :class:`ImageFolderSource`
    * a file with an image suffix -> :class:`ImageSource` (``start``/``stride`` must select it)
    * any other file -> :class:`VideoSource` (whatever FFmpeg can decode)
    """
    text = str(spec)
    if is_stream_spec(text):
        target = int(text) if text.isdigit() else text
        return StreamSource(target, start=start, max_frames=max_frames, stride=stride, intrinsics=intrinsics)
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(
            path, start=start, max_frames=max_frames, stride=stride, intrinsics=intrinsics, fps=folder_fps
        )
    if is_image_path(path):
        _check_range(start, max_frames, stride)
        if start > 0:
            raise InputError(f"{path}: a single image has only frame 0 (start={start})")
        return ImageSource(path, intrinsics=intrinsics)
    return VideoSource(path, start=start, max_frames=max_frames, stride=stride, intrinsics=intrinsics)
