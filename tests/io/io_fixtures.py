"""Helpers for the I/O and command tests: a tiny random SMPL-layout body, poses, test videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from comotion.body import BodyModel

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


def make_tiny_body(num_vertices: int = 240, with_coco: bool = True, seed: int = 0) -> BodyModel:
    """A random body in the SMPL array layout (24 joints, 10 betas), person-sized (about 1.7 m)."""
    g = torch.Generator().manual_seed(seed)
    template = torch.rand(num_vertices, 3, generator=g) * torch.tensor([0.5, 1.7, 0.3]) - torch.tensor(
        [0.25, 1.0, 0.15]
    )
    regressor = torch.rand(24, num_vertices, generator=g) ** 8
    weights = torch.softmax(torch.randn(num_vertices, 24, generator=g) * 3, dim=1)
    one_hot = lambda n: torch.eye(num_vertices)[torch.randperm(num_vertices, generator=g)[:n]]  # noqa: E731
    return BodyModel(
        v_template=template,
        shapedirs=torch.randn(num_vertices, 3, 10, generator=g) * 0.01,
        J_regressor=regressor / regressor.sum(dim=1, keepdim=True),
        weights=weights,
        parents=SMPL_PARENTS,
        faces=torch.randint(0, num_vertices, (400, 3), generator=g),
        keypoint_regressor=one_hot(5),
        coco_regressor=one_hot(17) if with_coco else None,
        name="tiny-test-body",
    )


def random_pose(num: int, seed: int = 0, scale: float = 0.4) -> torch.Tensor:
    """``(num, 72)`` poses: a person upright in the camera frame (root ~pi about x) plus noise."""
    g = torch.Generator().manual_seed(seed)
    pose = torch.randn(num, 72, generator=g) * scale
    pose[:, :3] = torch.tensor([np.pi, 0.0, 0.0]) + torch.randn(num, 3, generator=g) * 0.2
    return pose


def write_video(
    path: Path,
    frames: list[np.ndarray],
    codec: str = "libx264",
    pix_fmt: str = "yuv444p",
    fps: int = 10,
    rotation: int | None = None,
    gop_size: int | None = None,
) -> Path:
    """Encode ``(H, W, 3)`` uint8 RGB frames with PyAV (``gop_size``: frames between key frames)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2] if frames else (16, 16)
        stream.pix_fmt = pix_fmt
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if gop_size is not None:
            stream.codec_context.gop_size = gop_size
        container.start_encoding()  # writes the header even when there are no frames
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def numbered_frames(count: int, height: int, width: int) -> list[np.ndarray]:
    """Frames whose brightness encodes their number (frame k has value (20 + 10 k) mod 256) and a
    white square marking the top-left corner."""
    frames = []
    for k in range(count):
        rgb = np.full((height, width, 3), (20 + 10 * k) % 256, np.uint8)
        rgb[:4, :4] = 255
        frames.append(rgb)
    return frames
