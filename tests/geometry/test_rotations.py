import math

import torch

from comotion.geometry import (
    apply_pose_delta,
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    compose_axis_angle,
    matrix_to_axis_angle,
    quaternion_to_axis_angle,
)


def test_quarter_turn_about_z_maps_x_to_y():
    rot = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    torch.testing.assert_close(rot @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)


def test_exp_log_round_trip_including_tiny_and_near_pi_angles():
    torch.manual_seed(0)
    axes = torch.nn.functional.normalize(torch.randn(200, 3), dim=-1)
    angles = torch.cat([torch.rand(180) * 3.1, torch.tensor([0.0, 1e-9, 1e-6, 1e-4] * 4 + [math.pi - 1e-3] * 4)])
    aa = (axes * angles[:, None]).double()
    torch.testing.assert_close(quaternion_to_axis_angle(axis_angle_to_quaternion(aa)), aa, atol=1e-9, rtol=0)
    torch.testing.assert_close(matrix_to_axis_angle(axis_angle_to_matrix(aa)), aa, atol=1e-6, rtol=0)


def test_matrix_is_orthonormal():
    aa = torch.randn(50, 3, dtype=torch.float64) * 2
    rot = axis_angle_to_matrix(aa)
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(50, 3, 3))
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(50, dtype=torch.float64))


def test_composition_applies_delta_on_the_left():
    delta, base = torch.randn(10, 3, dtype=torch.float64), torch.randn(10, 3, dtype=torch.float64)
    composed = axis_angle_to_matrix(compose_axis_angle(delta, base))
    torch.testing.assert_close(composed, axis_angle_to_matrix(delta) @ axis_angle_to_matrix(base))


def test_pose_delta_is_per_joint_and_broadcasts():
    base = torch.randn(72, dtype=torch.float64)
    delta = torch.randn(4, 72, dtype=torch.float64) * 0.5
    out = apply_pose_delta(base, delta)
    assert out.shape == (4, 72)
    expected = axis_angle_to_matrix(delta.reshape(4, 24, 3)) @ axis_angle_to_matrix(base.reshape(24, 3))
    torch.testing.assert_close(axis_angle_to_matrix(out.reshape(4, 24, 3)), expected)


def test_half_turn_log_has_angle_pi():
    aa = torch.tensor([math.pi, 0.0, 0.0])
    out = quaternion_to_axis_angle(axis_angle_to_quaternion(aa))
    assert abs(out.norm().item() - math.pi) < 1e-6


def test_pose_delta_on_an_empty_batch():
    """Regression: reshaping with -1 failed for zero people (an empty detection set)."""
    out = apply_pose_delta(torch.zeros(72), torch.zeros(0, 72))
    assert out.shape == (0, 72)
