"""A vectorized z-buffer triangle rasterizer in torch (no OpenGL, no display).

Every triangle is expanded into the pixel centres of its screen bounding box, the centres
inside the triangle become fragments, and one ``scatter_reduce`` keeps the nearest fragment
per pixel.  Depth and attributes are interpolated perspective-correctly.  With the small
triangles of a body mesh at a few hundred pixels, the number of candidates stays a small
multiple of the covered area, so a frame costs a handful of tensor passes.

Conventions: camera frame (x right, y down, z forward, metres); pixel ``(row i, col j)``
covers ``[j, j + 1) x [i, i + 1)`` and is sampled at its centre ``(j + 0.5, i + 0.5)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NEAR_PLANE = 0.05


@dataclass
class Rasterization:
    """Per-pixel result of :func:`rasterize` for an ``H x W`` image.

    Attributes:
        depth: ``(H, W)`` camera z (metres) of the nearest surface, ``inf`` where empty.
        face: ``(H, W)`` int64 index of the visible triangle, -1 where empty.
        owner: ``(H, W)`` int64 owner id of the visible triangle, -1 where empty.
        barycentric: ``(H, W, 3)`` perspective-correct barycentric weights of the visible
            triangle's vertices (zeros where empty).
        coverage: ``(num_owners,)`` int64 number of pixels each owner covers when drawn alone
            (amodal area inside the image, occlusion ignored).
    """

    depth: torch.Tensor
    face: torch.Tensor
    owner: torch.Tensor
    barycentric: torch.Tensor
    coverage: torch.Tensor


def rasterize(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    face_owner: torch.Tensor,
    K: torch.Tensor,
    height: int,
    width: int,
    num_owners: int,
    cull_backfaces: bool = False,
) -> Rasterization:
    """Rasterize triangles with a depth buffer.

    Args:
        vertices: ``(V, 3)`` camera-frame points, metres.
        faces: ``(F, 3)`` int64 vertex indices.
        face_owner: ``(F,)`` int64 owner of each triangle (person or occluder number, 0-based).
        K: ``(2, 3)`` intrinsics ``[[fx, s, cx], [0, fy, cy]]``, pixels.
        height, width: image size in pixels.
        num_owners: number of owner ids (length of ``coverage``).
        cull_backfaces: drop triangles seen from behind, for meshes whose faces are wound
            counter-clockwise seen from outside (positive signed volume).
    """
    device = vertices.device
    z = vertices[:, 2]
    depth_ok = z > NEAR_PLANE
    uv = (vertices[:, :2] / z.clamp(min=NEAR_PLANE)[:, None]) @ K[:, :2].T + K[:, 2]

    tri_uv = uv[faces]  # (F, 3, 2)
    tri_z = z[faces]
    # Twice the signed screen area.  With v pointing down, a triangle that is counter-clockwise
    # seen from the camera has a negative area here.
    e1 = tri_uv[:, 1] - tri_uv[:, 0]
    e2 = tri_uv[:, 2] - tri_uv[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    keep = depth_ok[faces].all(dim=1) & (area.abs() > 1e-12)
    if cull_backfaces:
        keep &= area < 0
    lo = torch.ceil(tri_uv.amin(dim=1) - 0.5).clamp(min=0)
    hi = torch.floor(tri_uv.amax(dim=1) - 0.5)
    hi = torch.minimum(hi, torch.tensor([width - 1.0, height - 1.0], device=device))
    span = (hi - lo + 1).clamp(min=0)
    count = (span[:, 0] * span[:, 1]).long() * keep
    face_ids = torch.nonzero(count, as_tuple=True)[0]

    empty_depth = torch.full((height, width), float("inf"), device=device)
    if face_ids.numel() == 0:
        minus = torch.full((height, width), -1, dtype=torch.long, device=device)
        return Rasterization(
            empty_depth, minus, minus.clone(), torch.zeros(height, width, 3, device=device),
            torch.zeros(num_owners, dtype=torch.long, device=device),
        )

    # Expand every kept triangle into the pixels of its bounding box ("ragged arange").
    counts = count[face_ids]
    frag_face = torch.repeat_interleave(face_ids, counts)
    first = torch.cumsum(counts, 0) - counts
    offset = torch.arange(frag_face.numel(), device=device) - torch.repeat_interleave(first, counts)
    box_width = span[frag_face, 0].long()
    px = lo[frag_face, 0].long() + offset % box_width
    py = lo[frag_face, 1].long() + offset // box_width

    # Edge functions at pixel centres -> barycentric weights (screen space).
    centre = torch.stack([px, py], dim=1).to(uv.dtype) + 0.5
    a, b, c = tri_uv[frag_face, 0], tri_uv[frag_face, 1], tri_uv[frag_face, 2]

    def edge(p0: torch.Tensor, p1: torch.Tensor) -> torch.Tensor:
        return (p1[:, 0] - p0[:, 0]) * (centre[:, 1] - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (centre[:, 0] - p0[:, 0])

    frag_area = area[frag_face]
    w0 = edge(b, c) / frag_area
    w1 = edge(c, a) / frag_area
    w2 = edge(a, b) / frag_area
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
    frag_face, px, py = frag_face[inside], px[inside], py[inside]
    screen_w = torch.stack([w0[inside], w1[inside], w2[inside]], dim=1)

    # Perspective-correct interpolation: 1/z is linear in screen space.
    inv_z = screen_w / tri_z[frag_face]
    inv_depth = inv_z.sum(dim=1)
    frag_depth = 1.0 / inv_depth
    pixel = py * width + px

    # Nearest fragment per pixel in one reduction: positive float32 bit patterns sort like the
    # floats, so (depth bits << 32) | fragment number is ordered by depth, then fragment.
    depth_bits = frag_depth.float().view(torch.int32).long()
    key = (depth_bits << 32) | torch.arange(frag_face.numel(), device=device)
    best = torch.full((height * width,), torch.iinfo(torch.long).max, dtype=torch.long, device=device)
    best.scatter_reduce_(0, pixel, key, reduce="amin")
    covered = best != torch.iinfo(torch.long).max
    winner = best[covered] & 0xFFFFFFFF

    face = torch.full((height * width,), -1, dtype=torch.long, device=device)
    face[covered] = frag_face[winner]
    depth = empty_depth.reshape(-1)
    depth[covered] = frag_depth[winner].float()
    bary = torch.zeros(height * width, 3, dtype=vertices.dtype, device=device)
    bary[covered] = inv_z[winner] / inv_depth[winner, None]
    owner = torch.full_like(face, -1)
    owner[covered] = face_owner[face[covered]]

    owner_pixel = torch.zeros(num_owners * height * width, dtype=torch.bool, device=device)
    owner_pixel[face_owner[frag_face] * (height * width) + pixel] = True
    coverage = owner_pixel.reshape(num_owners, -1).sum(dim=1)
    return Rasterization(
        depth=depth.reshape(height, width),
        face=face.reshape(height, width),
        owner=owner.reshape(height, width),
        barycentric=bary.reshape(height, width, 3),
        coverage=coverage,
    )


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals ``(..., V, 3)`` of meshes ``vertices (..., V, 3)``."""
    tri = vertices[..., faces, :]  # (..., F, 3, 3)
    face_normal = torch.cross(tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :], dim=-1)
    normals = torch.zeros_like(vertices)
    for k in range(3):
        normals.index_add_(-2, faces[:, k], face_normal)
    return normals / normals.norm(dim=-1, keepdim=True).clamp(min=1e-12)
