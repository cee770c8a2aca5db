"""The z-buffer rasterizer on hand-made geometry with known answers."""

import numpy as np
import torch

from comotion.synth.raster import rasterize, vertex_normals

K = torch.tensor([[100.0, 0.0, 16.0], [0.0, 100.0, 16.0]])


def _quad(x0, y0, x1, y1, z0, z1=None):
    """Two triangles of a quad; z varies linearly in camera y from z0 (y0) to z1 (y1)."""
    z1 = z0 if z1 is None else z1
    vertices = torch.tensor([[x0, y0, z0], [x1, y0, z0], [x1, y1, z1], [x0, y1, z1]])
    return vertices, torch.tensor([[0, 1, 2], [0, 2, 3]])


def _pixel_centres_inside(x0, y0, x1, y1, z, size=32):
    """Pixels whose centres project inside the camera-frame rectangle at depth z."""
    centres = np.arange(size) + 0.5
    u_ok = (centres > x0 * 100 / z + 16) & (centres < x1 * 100 / z + 16)
    v_ok = (centres > y0 * 100 / z + 16) & (centres < y1 * 100 / z + 16)
    return v_ok[:, None] & u_ok[None, :]


def test_fronto_parallel_quad_covers_exactly_the_pixel_centres_inside_it():
    vertices, faces = _quad(-0.033, -0.051, 0.047, 0.029, 2.0)
    r = rasterize(vertices, faces, torch.zeros(2, dtype=torch.long), K, 32, 32, num_owners=1)
    expected = _pixel_centres_inside(-0.033, -0.051, 0.047, 0.029, 2.0)
    np.testing.assert_array_equal((r.face >= 0).numpy(), expected)
    assert torch.all(r.depth[r.face >= 0] == 2.0)
    assert torch.all(torch.isinf(r.depth[r.face < 0]))
    assert r.coverage.tolist() == [int(expected.sum())]
    np.testing.assert_allclose(r.barycentric[r.face >= 0].sum(-1).numpy(), 1.0, atol=1e-6)


def test_nearer_surface_wins_and_coverage_ignores_occlusion():
    far_v, far_f = _quad(-0.2, -0.2, 0.2, 0.2, 4.0)
    near_v, near_f = _quad(-0.02, -0.02, 0.08, 0.08, 1.0)
    vertices = torch.cat([far_v, near_v])
    faces = torch.cat([far_f, near_f + 4])
    owner = torch.tensor([0, 0, 1, 1])
    r = rasterize(vertices, faces, owner, K, 32, 32, num_owners=2)
    near = _pixel_centres_inside(-0.02, -0.02, 0.08, 0.08, 1.0)
    far = _pixel_centres_inside(-0.2, -0.2, 0.2, 0.2, 4.0)
    np.testing.assert_array_equal((r.owner == 1).numpy(), near)
    np.testing.assert_array_equal((r.owner == 0).numpy(), far & ~near)
    assert r.coverage.tolist() == [int(far.sum()), int(near.sum())]
    # Drawing order must not matter.
    flipped = rasterize(vertices, torch.cat([near_f + 4, far_f]), owner.flip(0), K, 32, 32, num_owners=2)
    torch.testing.assert_close(flipped.depth, r.depth)


def test_depth_is_perspective_correct_on_a_slanted_plane():
    # Plane through (y=-0.5, z=2) and (y=0.5, z=4): z = 3 + 2 y.  A pixel ray (x, y, 1) * z hits
    # it where z = 3 + 2 z yn, i.e. z = 3 / (1 - 2 yn) -- not linear in the pixel row.
    vertices, faces = _quad(-0.5, -0.5, 0.5, 0.5, 2.0, 4.0)
    r = rasterize(vertices, faces, torch.zeros(2, dtype=torch.long), K, 32, 32, num_owners=1)
    rows = torch.arange(32).float() + 0.5
    yn = (rows - 16) / 100
    expected = (3 / (1 - 2 * yn))[:, None].expand(32, 32)
    covered = r.face >= 0
    assert covered.sum() > 100
    torch.testing.assert_close(r.depth[covered], expected[covered].float(), rtol=1e-5, atol=1e-5)


def test_triangles_behind_the_camera_are_dropped():
    vertices, faces = _quad(-0.1, -0.1, 0.1, 0.1, -1.0)
    r = rasterize(vertices, faces, torch.zeros(2, dtype=torch.long), K, 32, 32, num_owners=1)
    assert (r.face < 0).all() and r.coverage.tolist() == [0]


def test_vertex_normals_of_a_cube_point_outwards():
    corners = torch.tensor([[x, y, z] for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)])
    faces = torch.tensor(
        [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
         [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    )  # fmt: skip
    normals = vertex_normals(corners, faces)
    assert torch.all((normals * corners).sum(-1) > 0)
    torch.testing.assert_close(normals.norm(dim=-1), torch.ones(8))


def test_culling_keeps_triangles_facing_the_camera_only():
    # Counter-clockwise seen from the camera (looking along +z, y down): normal towards -z.
    vertices = torch.tensor([[-0.13, -0.11, 2.0], [-0.1, 0.12, 2.0], [0.09, 0.1, 2.0]])
    facing = torch.tensor([[0, 1, 2]])
    normal = torch.linalg.cross(vertices[1] - vertices[0], vertices[2] - vertices[0])
    assert normal[2] < 0
    owner = torch.zeros(1, dtype=torch.long)
    kept = rasterize(vertices, facing, owner, K, 32, 32, 1, cull_backfaces=True)
    dropped = rasterize(vertices, facing[:, [0, 2, 1]], owner, K, 32, 32, 1, cull_backfaces=True)
    assert kept.coverage.item() > 0 and dropped.coverage.item() == 0
    both = rasterize(vertices, facing[:, [0, 2, 1]], owner, K, 32, 32, 1)
    assert both.coverage.item() == kept.coverage.item()
