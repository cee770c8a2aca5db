"""Fixtures for the synthetic-data tests: a small human-shaped body built from closed tubes.

The tube body has SMPL's joint layout and roughly human proportions, so rendered people,
occlusions and keypoint visibility behave as with a real body model, while the tests do not
depend on a packaged model file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from comotion.body import BodyModel

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
# Approximate SMPL rest joints (metres, y up, facing +z, +x = the body's left).
REST_JOINTS = np.array(
    [
        [0.0, 0.0, 0.0], [0.06, -0.09, 0.0], [-0.06, -0.09, 0.0], [0.0, 0.11, -0.02], [0.1, -0.47, 0.0],
        [-0.1, -0.47, 0.0], [0.0, 0.25, 0.0], [0.08, -0.87, -0.03], [-0.08, -0.87, -0.03], [0.0, 0.31, 0.0],
        [0.11, -0.93, 0.1], [-0.11, -0.93, 0.1], [0.0, 0.52, -0.02], [0.07, 0.43, -0.01], [-0.07, 0.43, -0.01],
        [0.0, 0.6, 0.03], [0.18, 0.46, -0.02], [-0.18, 0.46, -0.02], [0.43, 0.45, -0.04], [-0.43, 0.45, -0.04],
        [0.68, 0.46, -0.03], [-0.68, 0.46, -0.03], [0.76, 0.45, -0.04], [-0.76, 0.45, -0.04],
    ]
)  # fmt: skip
# (parent joint that moves the tube, start joint, end joint, radius) per tube.
TUBES = [
    (0, 0, 3, 0.13), (3, 3, 9, 0.14), (9, 9, 12, 0.12), (12, 12, 15, 0.05), (15, 15, 15, 0.08),
    (1, 1, 4, 0.07), (2, 2, 5, 0.07), (4, 4, 7, 0.05), (5, 5, 8, 0.05), (7, 7, 10, 0.04), (8, 8, 11, 0.04),
    (16, 16, 18, 0.045), (17, 17, 19, 0.045), (18, 18, 20, 0.04), (19, 19, 21, 0.04),
    (20, 20, 22, 0.035), (21, 21, 23, 0.035), (13, 13, 16, 0.06), (14, 14, 17, 0.06),
]  # fmt: skip


def _tube(start: np.ndarray, end: np.ndarray, radius: float, sides: int = 8, rings: int = 4):
    """A closed tube (capsule-like, flat caps) from ``start`` to ``end``; outward CCW faces."""
    axis = end - start
    length = np.linalg.norm(axis)
    if length < 1e-6:  # a sphere-ish blob for the head
        axis, length, start = np.array([0.0, 1.0, 0.0]), 2 * radius, start - np.array([0.0, radius * 0.6, 0.0])
    direction = axis / max(length, 1e-9)
    helper = np.array([0.0, 0.0, 1.0]) if abs(direction[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(direction, helper)
    u /= np.linalg.norm(u)
    w = np.cross(direction, u)
    angles = np.arange(sides) * 2 * np.pi / sides
    heights = np.linspace(-radius * 0.5, length + radius * 0.5, rings)
    ring = np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * w
    vertices = [start + direction * h + radius * ring for h in heights]
    vertices = np.concatenate(vertices + [start[None] + direction * heights[0], start[None] + direction * heights[-1]])
    faces = []
    for r in range(rings - 1):
        for s in range(sides):
            a, b = r * sides + s, r * sides + (s + 1) % sides
            faces += [[a, b, a + sides], [b, b + sides, a + sides]]
    bottom, top = rings * sides, rings * sides + 1
    for s in range(sides):
        faces.append([bottom, (s + 1) % sides, s])
        faces.append([top, (rings - 1) * sides + s, (rings - 1) * sides + (s + 1) % sides])
    return vertices, np.array(faces)


def make_tube_body() -> BodyModel:
    vertices, faces, weights_joint = [], [], []
    for parent, a, b, radius in TUBES:
        v, f = _tube(REST_JOINTS[a], REST_JOINTS[b], radius)
        faces.append(f + sum(len(x) for x in vertices))
        vertices.append(v)
        weights_joint += [parent] * len(v)
    # One extra vertex at every joint, read exactly by the joint regressor.
    vertices.append(REST_JOINTS)
    weights_joint += list(range(24))
    head = REST_JOINTS[15]
    face_points = head + np.array([[0.0, 0.0, 0.1], [-0.035, 0.03, 0.09], [0.035, 0.03, 0.09], [-0.1, 0.0, 0.0], [0.1, 0.0, 0.0]])
    vertices.append(face_points)
    weights_joint += [15] * 5
    v_template = np.concatenate(vertices)
    num_vertices = len(v_template)
    joint_vertex = num_vertices - 29 + np.arange(24)
    face_vertex = num_vertices - 5 + np.arange(5)
    weights = np.zeros((num_vertices, 24))
    weights[np.arange(num_vertices), weights_joint] = 1.0
    J_regressor = np.zeros((24, num_vertices))
    J_regressor[np.arange(24), joint_vertex] = 1.0
    keypoint_regressor = np.zeros((5, num_vertices))
    keypoint_regressor[np.arange(5), face_vertex] = 1.0
    coco_sources = np.concatenate([face_vertex[[0, 2, 1, 4, 3]], joint_vertex[[16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8]]])
    coco = np.zeros((17, num_vertices))
    coco[np.arange(17), coco_sources] = 1.0
    # Shape: beta 0 scales the body, beta 1 widens it.
    shapedirs = np.zeros((num_vertices, 3, 10))
    shapedirs[:, :, 0] = v_template * 0.05
    shapedirs[:, 0, 1] = v_template[:, 0] * 0.08
    return BodyModel(
        v_template=torch.tensor(v_template, dtype=torch.float32),
        shapedirs=torch.tensor(shapedirs, dtype=torch.float32),
        J_regressor=torch.tensor(J_regressor, dtype=torch.float32),
        weights=torch.tensor(weights, dtype=torch.float32),
        parents=SMPL_PARENTS,
        faces=torch.tensor(np.concatenate(faces), dtype=torch.long),
        keypoint_regressor=torch.tensor(keypoint_regressor, dtype=torch.float32),
        coco_regressor=torch.tensor(coco, dtype=torch.float32),
        name="tube-test-body",
    )


@pytest.fixture(scope="session")
def tube_body() -> BodyModel:
    return make_tube_body()
