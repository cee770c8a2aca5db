"""SO(3) in the forms CoMotion needs: axis-angle, unit quaternions (x, y, z, w) and matrices.

The published system composes rotations through quaternions (pypose ``so3.Exp``/``SO3.Log``).
The exponential and logarithm below use the same branch formulas, including the Taylor
expansions near zero, so that composed poses agree with it to float32 precision even for
angles close to pi (the mean pose's root orientation is a rotation by pi about x).
"""

from __future__ import annotations

import math

import torch

_EPS32 = torch.finfo(torch.float32).eps


def _eps(t: torch.Tensor) -> float:
    return torch.finfo(t.dtype).eps if t.dtype.is_floating_point else _EPS32


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """Exponential map: rotation vectors ``(..., 3)`` (radians) -> unit quaternions ``(..., 4)`` xyzw."""
    angle = axis_angle.norm(dim=-1, keepdim=True)
    angle2 = angle * angle
    large = angle > _eps(axis_angle)
    safe_angle = torch.where(large, angle, torch.ones_like(angle))
    imag_factor = torch.where(
        large,
        torch.sin(0.5 * angle) / safe_angle,
        0.5 - angle2 / 48.0 + angle2 * angle2 / 3840.0,
    )
    real = torch.where(large, torch.cos(0.5 * angle), 1.0 - angle2 / 8.0 + angle2 * angle2 / 384.0)
    return torch.cat([axis_angle * imag_factor, real], dim=-1)


def quaternion_to_axis_angle(quaternion: torch.Tensor) -> torch.Tensor:
    """Logarithm map: quaternions ``(..., 4)`` xyzw -> rotation vectors ``(..., 3)`` with angle <= pi.

    The sign of the quaternion does not matter (q and -q give the same vector).
    """
    imag, real = quaternion[..., :3], quaternion[..., 3:]
    eps = _eps(quaternion)
    norm = imag.norm(dim=-1, keepdim=True)
    safe_norm = torch.where(norm > eps, norm, torch.ones_like(norm))
    safe_real = torch.where(real.abs() > eps, real, torch.ones_like(real))
    general = 2.0 * torch.atan(norm / safe_real) / safe_norm
    half_turn = torch.where(real >= 0, math.pi, -math.pi) / safe_norm
    small = 2.0 * (1.0 / safe_real - norm * norm / (3.0 * safe_real**3))
    factor = torch.where(norm > eps, torch.where(real.abs() > eps, general, half_turn), small)
    return imag * factor


def quaternion_multiply(q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``q1 * q2`` of xyzw quaternions (rotation q2 first, then q1)."""
    v1, w1 = q1[..., :3], q1[..., 3:]
    v2, w2 = q2[..., :3], q2[..., 3:]
    imag = w1 * v2 + w2 * v1 + torch.linalg.cross(v1, v2, dim=-1)
    real = w1 * w2 - (v1 * v2).sum(dim=-1, keepdim=True)
    return torch.cat([imag, real], dim=-1)


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """Unit quaternions ``(..., 4)`` xyzw -> rotation matrices ``(..., 3, 3)``.

    R = I + 2w[v]x + 2[v]x^2, i.e. the reference's "rotate each basis vector e by
    e + w t + v x t with t = 2 v x e".
    """
    x, y, z, w = quaternion.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*x.shape, 3, 3)
    eye = torch.eye(3, dtype=quaternion.dtype, device=quaternion.device)
    return eye + 2.0 * w[..., None, None] * skew + 2.0 * (skew @ skew)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation vectors ``(..., 3)`` -> rotation matrices ``(..., 3, 3)``."""
    return quaternion_to_matrix(axis_angle_to_quaternion(axis_angle))


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` -> unit quaternions ``(..., 4)`` xyzw (w >= 0).

    Picks, per matrix, the numerically best of the four classic formulas (largest pivot).
    """
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    trace = m00 + m11 + m22
    candidates = torch.stack(
        [
            torch.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1], 1 + trace], -1),
            torch.stack([1 + m00 - m11 - m22, m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] - m[..., 1, 2]], -1),
            torch.stack([m[..., 0, 1] + m[..., 1, 0], 1 - m00 + m11 - m22, m[..., 1, 2] + m[..., 2, 1], m[..., 0, 2] - m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 - m00 - m11 + m22, m[..., 1, 0] - m[..., 0, 1]], -1),
        ],
        dim=-2,
    )  # (..., 4, 4): row i is 4 q_i * q scaled by the pivot
    pivots = torch.stack([1 + trace, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = pivots.argmax(dim=-1, keepdim=True)
    q = torch.gather(candidates, -2, best[..., None].expand(*best.shape, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., 3:] < 0, -q, q)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` -> rotation vectors ``(..., 3)`` with angle <= pi."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def compose_axis_angle(delta: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """Rotation vector of ``Exp(delta) @ Exp(base)``: ``delta`` applied on the left (parent frame).

    Shapes ``(..., 3)``, broadcast against each other.
    """
    q = quaternion_multiply(axis_angle_to_quaternion(delta), axis_angle_to_quaternion(base))
    return quaternion_to_axis_angle(q)


def apply_pose_delta(base_pose: torch.Tensor, delta_pose: torch.Tensor) -> torch.Tensor:
    """Compose a per-joint delta with a pose: ``(..., J*3)`` each, result ``(..., J*3)``.

    This is how CoMotion turns network outputs into SMPL poses: every joint's delta rotation is
    applied on the left of the base (mean) pose's rotation of that joint.
    """
    shape = torch.broadcast_shapes(base_pose.shape, delta_pose.shape)
    joints = shape[-1] // 3  # explicit, so that empty batches reshape too
    base = base_pose.expand(shape).reshape(*shape[:-1], joints, 3)
    delta = delta_pose.expand(shape).reshape(*shape[:-1], joints, 3)
    return compose_axis_angle(delta, base).reshape(shape)
