"""Procedural motion: rotation conventions, joint limits, smoothness, paths that match the gait."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from comotion.synth.motion import (
    JOINT_EULER_ORDER,
    JOINT_LIMITS,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    MotionConfig,
    body_pose_from_euler,
    euler_to_matrix,
    sample_motion,
)

FPS = 30.0


def _motions(num=24, frames=150, **kwargs):
    return [sample_motion(np.random.default_rng(seed), frames, MotionConfig(fps=FPS), **kwargs) for seed in range(num)]


@pytest.mark.parametrize("order", ["XYZ", "YXZ"])
def test_euler_convention_is_intrinsic(order):
    angles = np.random.default_rng(0).uniform(-1.2, 1.2, (50, 3))
    in_order = angles[:, ["XYZ".index(axis) for axis in order]]
    np.testing.assert_allclose(euler_to_matrix(angles, order), Rotation.from_euler(order, in_order).as_matrix(), atol=1e-12)


def test_sign_conventions_move_limbs_as_documented():
    # Rest directions in the body frame (y up, facing +z, +x = left).
    def rotated(joint, axis, angle, direction):
        euler = np.zeros(3)
        euler[axis] = angle
        return euler_to_matrix(euler) @ np.asarray(direction, float)

    assert rotated(L_HIP, 0, -0.5, [0, -1, 0])[2] > 0  # negative hip x: leg swings forward
    assert rotated(L_KNEE, 0, 0.5, [0, -1, 0])[2] < 0  # positive knee x: shin bends backward
    np.testing.assert_allclose(rotated(L_SHOULDER, 2, -np.pi / 2, [1, 0, 0]), [0, -1, 0], atol=1e-12)


def test_blended_angles_stay_within_joint_limits_after_conversion_to_axis_angle():
    for motion in _motions():
        pose = body_pose_from_euler(motion.euler).reshape(-1, 24, 3)
        assert_within_joint_limits(pose)


def assert_within_joint_limits(pose: np.ndarray) -> None:
    """Recover each joint's angles independently (scipy) from axis-angle ``pose (N, 24, 3)``."""
    for joint in range(1, 24):
        order = JOINT_EULER_ORDER[joint]
        angles = Rotation.from_rotvec(pose[:, joint]).as_euler(order)
        xyz = angles[:, [order.index(axis) for axis in "XYZ"]]
        assert np.all(xyz >= JOINT_LIMITS[joint, :, 0] - 1e-5), joint
        assert np.all(xyz <= JOINT_LIMITS[joint, :, 1] + 1e-5), joint


def test_motion_is_smooth_in_time():
    max_step = 0.0
    for motion in _motions():
        rotations = Rotation.from_rotvec(body_pose_from_euler(motion.euler).reshape(-1, 3)).as_matrix().reshape(-1, 24, 3, 3)
        relative = np.einsum("tjab,tjac->tjbc", rotations[:-1], rotations[1:])
        angle = np.arccos(np.clip((np.trace(relative, axis1=-2, axis2=-1) - 1) / 2, -1, 1))
        max_step = max(max_step, angle.max())
        assert np.abs(np.diff(motion.heading)).max() * FPS < 1.6  # rad/s
        assert np.abs(np.diff(motion.lift)).max() * FPS < 3.0  # m/s
    # The fastest joint (a running knee) stays below 13.5 rad/s, under a sprinter's peak.
    assert 0.05 < max_step < 0.45


def test_motions_use_several_activities_and_differ_between_seeds():
    motions = _motions()
    activities = np.concatenate([m.activity for m in motions])
    assert len(np.unique(activities)) >= 5
    assert not np.allclose(motions[0].euler, motions[1].euler)
    again = sample_motion(np.random.default_rng(0), 150, MotionConfig(fps=FPS))
    np.testing.assert_array_equal(again.euler, motions[0].euler)


@pytest.mark.parametrize("heading", [0.3, -2.0])
def test_locomotion_moves_along_the_heading_at_walking_or_running_speed(heading):
    config = MotionConfig(fps=FPS)
    for motion in _motions(num=6, locomotion_only=True, turn_scale=0.0, start_heading=heading, start_xz=(1.0, -4.0)):
        np.testing.assert_allclose(motion.heading, heading)
        step = np.diff(motion.ground_xz, axis=0)
        speed = np.linalg.norm(step, axis=1) * FPS
        assert np.all(speed >= config.walk_speed[0] - 1e-9) and np.all(speed <= config.run_speed[1] + 1e-9)
        np.testing.assert_allclose(step / np.linalg.norm(step, axis=1, keepdims=True), np.tile([np.sin(heading), np.cos(heading)], (len(step), 1)), atol=1e-9)
        np.testing.assert_allclose(motion.ground_xz[0], [1.0, -4.0])
        # Legs swing in opposition while walking.
        hips = motion.euler[:, [1, 2], 0]
        assert np.corrcoef(hips[:, 0], hips[:, 1])[0, 1] < -0.5
