"""MOT-challenge text output: one line per (frame, track) with a person box.

Boxes follow the reference (spec section 8.5): the body mesh (every 20th vertex) projected with
K, the per-axis min/max, padded on both sides of both axes by 5% of the longer side, then clamped
(reference clamp: min corner >= 0.01, max corner <= (W - 1, H - 1) only; or, with
``clamp="image"``, both corners into the image).  Lines read
``frame+1,id,x1+1,y1+1,(x2-x1)+1,(y2-y1)+1,1,0,0,0`` with two decimals, +1 on all four box
numbers (quirk Q18; ``fixed_quirks=True`` writes ``x1+1,y1+1,x2-x1,y2-y1``, the MOT convention).
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from comotion.geometry.camera import boxes_from_points, clamp_boxes_reference, clamp_boxes_to_image, project_points

BOX_VERTEX_STRIDE = 20
BOX_PADDING = 0.05


def mesh_boxes(
    body,
    betas: torch.Tensor,
    pose: torch.Tensor,
    trans: torch.Tensor,
    K: torch.Tensor,
    height: int,
    width: int,
    clamp: str = "reference",
) -> torch.Tensor:
    """Person boxes ``(N, 2, 2)`` = ``[[x1, y1], [x2, y2]]`` pixels from the projected body mesh.

    Args:
        body: a :class:`~comotion.body.BodyModel`.
        betas, pose, trans: ``(N, 10)``, ``(N, 72)``, ``(N, 3)`` camera frame.
        K: ``(2, 3)`` or ``(N, 2, 3)`` intrinsics.
        clamp: ``"reference"`` (quirk Q19) or ``"image"`` (both corners inside the image).
    """
    if betas.shape[0] == 0:
        return torch.zeros(0, 2, 2)
    vertices = body(betas, pose, trans, vertices=BOX_VERTEX_STRIDE).vertices
    return vertex_boxes(vertices, K, height, width, clamp)


def vertex_boxes(
    vertices: torch.Tensor, K: torch.Tensor, height: int, width: int, clamp: str = "reference"
) -> torch.Tensor:
    """Boxes ``(N, 2, 2)`` around camera-frame vertices ``(N, V, 3)`` (every 20th mesh vertex for
    the reference boxes) projected with ``K (2, 3)`` or ``(N, 2, 3)``; padding and clamping as
    :func:`mesh_boxes`."""
    K = K.to(vertices)
    uv = project_points(vertices, K if K.dim() == 3 else K.expand(len(vertices), 2, 3))
    boxes = boxes_from_points(uv, pad=BOX_PADDING)
    if clamp == "reference":
        return clamp_boxes_reference(boxes, height, width)
    if clamp == "image":
        return clamp_boxes_to_image(boxes, height, width)
    raise ValueError(f"clamp must be 'reference' or 'image', got {clamp!r}")


def format_mot_lines(
    frame_index: np.ndarray, track_id: np.ndarray, boxes: np.ndarray, fixed_quirks: bool = False
) -> list[str]:
    """MOT text lines (with trailing newline) for rows ``frame_index (R,)``, ``track_id (R,)``,
    ``boxes (R, 2, 2)`` pixels.  Arithmetic in float32 as the reference."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 2, 2)
    one = np.float32(1.0)
    size_offset = np.float32(0.0) if fixed_quirks else one
    x1 = boxes[:, 0, 0] + one
    y1 = boxes[:, 0, 1] + one
    w = (boxes[:, 1, 0] - boxes[:, 0, 0]) + size_offset
    h = (boxes[:, 1, 1] - boxes[:, 0, 1]) + size_offset
    return [
        f"{int(f) + 1},{int(i)},{float(a):.2f},{float(b):.2f},{float(c):.2f},{float(d):.2f},1,0,0,0\n"
        for f, i, a, b, c, d in zip(np.asarray(frame_index), np.asarray(track_id), x1, y1, w, h)
    ]


class MotWriter:
    """Append MOT lines to a text file frame by frame (flushed after every frame)."""

    def __init__(self, path: str | Path, fixed_quirks: bool = False) -> None:
        self.path = Path(path)
        self.fixed_quirks = fixed_quirks
        self._file: TextIO = open(self.path, "w")

    def write(self, frame_index: np.ndarray, track_id: np.ndarray, boxes: np.ndarray) -> None:
        """Rows ``frame_index (R,)``, ``track_id (R,)``, ``boxes (R, 2, 2)`` pixels."""
        self._file.writelines(format_mot_lines(frame_index, track_id, boxes, self.fixed_quirks))
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "MotWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
