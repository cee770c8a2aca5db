"""Behaviour of the BodyModel layer on a small hand-built skeleton (independent of any data file)."""

import math

import pytest
import torch

from comotion.body import BodyModel

# A chain-shaped 24-joint tree: every joint hangs off the previous one, 0.1 m apart along +y.
PARENTS = [-1] + list(range(23))


def _chain_body(num_vertices=30):
    torch.manual_seed(0)
    joints = torch.zeros(24, 3)
    joints[:, 1] = torch.arange(24) * 0.1
    v_template = torch.randn(num_vertices, 3) * 0.05 + joints[torch.arange(num_vertices) % 24]
    weights = torch.zeros(num_vertices, 24)
    weights[torch.arange(num_vertices), torch.arange(num_vertices) % 24] = 1.0
    # A regressor that reads each joint exactly from a one-hot "vertex" at the joint.
    J_regressor = torch.zeros(24, num_vertices)
    v_template[:24] = joints
    J_regressor[torch.arange(24), torch.arange(24)] = 1.0
    keypoint_regressor = torch.zeros(5, num_vertices)
    keypoint_regressor[torch.arange(5), 24 + torch.arange(5)] = 1.0
    coco = torch.full((17, num_vertices), 1.0 / num_vertices)
    return BodyModel(
        v_template=v_template,
        shapedirs=torch.randn(num_vertices, 3, 10) * 0.01,
        J_regressor=J_regressor,
        weights=weights,
        parents=PARENTS,
        faces=torch.tensor([[0, 1, 2]]),
        keypoint_regressor=keypoint_regressor,
        coco_regressor=coco,
        name="chain",
    )


def test_zero_pose_returns_rest_joints_and_translation_shifts_everything():
    body = _chain_body()
    betas = torch.randn(2, 10)
    out = body(betas, torch.zeros(2, 72), coco=True, vertices="all")
    torch.testing.assert_close(out.joints, body.rest_joints(betas))
    moved = body(betas, torch.zeros(2, 72), torch.tensor([1.0, 2.0, 3.0]), coco=True, vertices="all")
    for name in ("joints", "keypoints", "coco", "vertices"):
        torch.testing.assert_close(getattr(moved, name) - getattr(out, name), torch.tensor([1.0, 2.0, 3.0]).expand_as(getattr(out, name)))


def test_root_rotation_rotates_the_whole_body_about_the_root():
    body = _chain_body()
    betas = torch.zeros(10)
    pose = torch.zeros(72)
    pose[2] = math.pi / 2  # 90 degrees about z: +y becomes -x
    out = body(betas, pose)
    rest = body.rest_joints(betas)
    rel = rest - rest[0]
    expected = torch.stack([-rel[:, 1], rel[:, 0], rel[:, 2]], dim=-1) + rest[0]
    torch.testing.assert_close(out.joints, expected, atol=1e-6, rtol=0)


def test_keypoints_are_22_joints_then_face_points_and_vertex_selection():
    body = _chain_body()
    betas, pose = torch.zeros(3, 10), torch.randn(3, 72) * 0.2
    out = body(betas, pose, vertices="all")
    torch.testing.assert_close(out.keypoints[:, :22], out.joints[:, :22])
    torch.testing.assert_close(out.keypoints[:, 22:], out.vertices[:, 24:29])
    strided = body(betas, pose, vertices=7)
    torch.testing.assert_close(strided.vertices, out.vertices[:, ::7])
    picked = body(betas, pose, vertices=torch.tensor([3, 5]))
    torch.testing.assert_close(picked.vertices, out.vertices[:, [3, 5]])
    torch.testing.assert_close(body.keypoints(betas, pose), out.keypoints)


def test_shape_checks():
    body = _chain_body()
    with pytest.raises(ValueError, match="expected betas"):
        body(torch.zeros(3, 9), torch.zeros(3, 72))
    with pytest.raises(ValueError, match="weights has shape"):
        BodyModel(
            v_template=torch.zeros(10, 3), shapedirs=torch.zeros(10, 3, 10), J_regressor=torch.zeros(24, 10),
            weights=torch.zeros(9, 24), parents=PARENTS, faces=torch.zeros(0, 3), keypoint_regressor=torch.zeros(5, 10),
        )
