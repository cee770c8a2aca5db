"""Procedural human motion in the SMPL joint layout, deterministic from a random generator.

A person's motion is a sequence of activity segments (locomotion at a given speed, standing,
crouching, reaching, jumping, dancing).  Every activity maps a shared gait phase and the time
to per-joint Euler angles; segments are cross-faded with a smooth window, so pose, speed and
turn rate are continuous, and the blended angles are clamped to per-joint ranges.

Angles are intrinsic Euler angles ``(a, b, c)`` about x, y and z of each joint's local rotation,
in the body's rest frame (y up, facing +z, +x is the body's left), composed as
``R = Rx(a) Ry(b) Rz(c)`` except for the elbows, ``R = Ry(b) Rx(a) Rz(c)``
(:data:`JOINT_EULER_ORDER`): the middle axis of a decomposition is limited to +-pi/2 and the
elbow bends about y by up to 2.5 rad.  Sign conventions that the
activities rely on: a negative hip x-angle swings the leg forward, a positive knee x-angle bends
the knee, a shoulder z-angle of -pi/2 (left) / +pi/2 (right) lowers the arm from the T-pose, a
negative shoulder x-angle swings the lowered arm forward, a negative (left) / positive (right)
elbow y-angle bends the elbow, a positive spine x-angle leans forward.

The root's local angles hold only lean and sway; heading (about the vertical) and the ground
path are separate outputs, so the scene can place and orient people in the world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from comotion.geometry.rotations import matrix_to_axis_angle

NUM_JOINTS = 24
ACTIVITIES = ("locomote", "idle", "crouch", "reach", "jump", "dance")
ACTIVITY_PROBABILITIES = (0.42, 0.14, 0.1, 0.1, 0.08, 0.16)

# SMPL joint numbers used by the activities.
PELVIS, L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3 = range(10)
L_FOOT, R_FOOT, NECK, L_COLLAR, R_COLLAR, HEAD, L_SHOULDER, R_SHOULDER = range(10, 18)
L_ELBOW, R_ELBOW, L_WRIST, R_WRIST, L_HAND, R_HAND = range(18, 24)


def _joint_limits() -> np.ndarray:
    """``(24, 3, 2)`` radians: [min, max] of each joint's intrinsic XYZ Euler angles."""
    small = [(-0.3, 0.3)] * 3
    limits = {
        PELVIS: [(-0.6, 0.6), (-0.5, 0.5), (-0.4, 0.4)],
        L_HIP: [(-2.2, 0.6), (-0.6, 0.6), (-0.3, 0.8)],
        R_HIP: [(-2.2, 0.6), (-0.6, 0.6), (-0.8, 0.3)],
        SPINE1: [(-0.3, 0.6), (-0.4, 0.4), (-0.3, 0.3)],
        L_KNEE: [(0.0, 2.4), (-0.2, 0.2), (-0.1, 0.1)],
        R_KNEE: [(0.0, 2.4), (-0.2, 0.2), (-0.1, 0.1)],
        SPINE2: [(-0.3, 0.6), (-0.4, 0.4), (-0.3, 0.3)],
        L_ANKLE: [(-0.7, 0.8), (-0.3, 0.3), (-0.3, 0.3)],
        R_ANKLE: [(-0.7, 0.8), (-0.3, 0.3), (-0.3, 0.3)],
        SPINE3: [(-0.3, 0.6), (-0.4, 0.4), (-0.3, 0.3)],
        L_FOOT: [(-0.4, 0.4), (-0.1, 0.1), (-0.1, 0.1)],
        R_FOOT: [(-0.4, 0.4), (-0.1, 0.1), (-0.1, 0.1)],
        NECK: [(-0.5, 0.6), (-0.6, 0.6), (-0.4, 0.4)],
        L_COLLAR: small,
        R_COLLAR: small,
        HEAD: [(-0.4, 0.5), (-0.6, 0.6), (-0.3, 0.3)],
        L_SHOULDER: [(-2.8, 1.0), (-1.0, 1.0), (-1.5, 1.2)],
        R_SHOULDER: [(-2.8, 1.0), (-1.0, 1.0), (-1.2, 1.5)],
        L_ELBOW: [(-0.5, 0.5), (-2.5, 0.0), (-0.1, 0.1)],
        R_ELBOW: [(-0.5, 0.5), (0.0, 2.5), (-0.1, 0.1)],
        L_WRIST: [(-0.8, 0.8), (-0.5, 0.5), (-0.6, 0.6)],
        R_WRIST: [(-0.8, 0.8), (-0.5, 0.5), (-0.6, 0.6)],
        L_HAND: small,
        R_HAND: small,
    }
    return np.array([limits[j] for j in range(NUM_JOINTS)], dtype=np.float64)


JOINT_LIMITS = _joint_limits()
JOINT_EULER_ORDER = tuple("YXZ" if joint in (L_ELBOW, R_ELBOW) else "XYZ" for joint in range(NUM_JOINTS))


@dataclass
class MotionConfig:
    """Parameters of the motion sampler.

    Attributes:
        fps: frames per second of the generated sequence.
        segment_seconds: (min, max) duration of one activity segment.
        blend_seconds: width of the cross-fade window between segments.
        walk_speed, run_speed: (min, max) ground speed in m/s of walking / running segments.
        run_probability: chance that a locomotion segment is a run.
        turn_rate_std: standard deviation of the per-segment turn rate, rad/s.
        activity_probabilities: one weight per entry of :data:`ACTIVITIES`.
    """

    fps: float = 30.0
    segment_seconds: tuple[float, float] = (1.5, 4.0)
    blend_seconds: float = 0.6
    walk_speed: tuple[float, float] = (0.7, 1.8)
    run_speed: tuple[float, float] = (2.4, 3.8)
    run_probability: float = 0.25
    turn_rate_std: float = 0.35
    activity_probabilities: tuple[float, ...] = ACTIVITY_PROBABILITIES


@dataclass
class PersonMotion:
    """One person's motion over ``T`` frames (world frame: y up, ground plane y = 0).

    Attributes:
        euler: ``(T, 24, 3)`` local intrinsic-XYZ Euler angles (radians), limits applied; the
            root's entry is lean/sway relative to the heading.
        heading: ``(T,)`` rotation about the world's vertical axis (radians; 0 faces world +z).
        ground_xz: ``(T, 2)`` metres, the pelvis' position projected on the ground.
        lift: ``(T,)`` metres the whole body is raised above standing contact (jumps).
        activity: ``(T,)`` index into :data:`ACTIVITIES` of the dominant activity.
    """

    euler: np.ndarray
    heading: np.ndarray
    ground_xz: np.ndarray
    lift: np.ndarray
    activity: np.ndarray


def _axis_rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(angle), np.ones_like(angle)
    rows = {
        "X": ((one, zero, zero), (zero, c, -s), (zero, s, c)),
        "Y": ((c, zero, s), (zero, one, zero), (-s, zero, c)),
        "Z": ((c, -s, zero), (s, c, zero), (zero, zero, one)),
    }[axis]
    return np.stack([np.stack(row, -1) for row in rows], -2)


def euler_to_matrix(euler: np.ndarray, order: str = "XYZ") -> np.ndarray:
    """Angles ``(..., 3)`` about x, y, z -> rotations ``(..., 3, 3)`` composed in ``order``
    (intrinsic; ``"XYZ"`` gives ``Rx Ry Rz``)."""
    matrices = {axis: _axis_rotation(axis, euler[..., k]) for k, axis in enumerate("XYZ")}
    return matrices[order[0]] @ matrices[order[1]] @ matrices[order[2]]


def joint_rotations(euler: np.ndarray) -> np.ndarray:
    """Local rotations ``(..., 24, 3, 3)`` from joint angles ``(..., 24, 3)`` (:data:`JOINT_EULER_ORDER`)."""
    matrices = euler_to_matrix(euler)
    for joint, order in enumerate(JOINT_EULER_ORDER):
        if order != "XYZ":
            matrices[..., joint, :, :] = euler_to_matrix(euler[..., joint, :], order)
    return matrices


def rotation_y(angle: np.ndarray) -> np.ndarray:
    """Rotations ``(..., 3, 3)`` about +y by ``angle (...)`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1), np.stack([-s, zero, c], -1)], -2)


def body_pose_from_euler(euler: np.ndarray) -> np.ndarray:
    """Local Euler angles ``(..., 24, 3)`` -> SMPL axis-angle ``(..., 72)`` (root entry included)."""
    matrices = torch.from_numpy(joint_rotations(euler))
    return matrix_to_axis_angle(matrices).numpy().reshape(*euler.shape[:-2], 3 * NUM_JOINTS)


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Moving Hann-window average along axis 0 with edge padding (keeps constant signals)."""
    if window < 2:
        return values
    kernel = np.hanning(window + 2)[1:-1]
    kernel /= kernel.sum()
    pad = window // 2
    padded = np.concatenate([np.repeat(values[:1], pad, 0), values, np.repeat(values[-1:], window - 1 - pad, 0)])
    flat = padded.reshape(len(padded), -1)
    out = np.stack([np.convolve(flat[:, k], kernel, mode="valid") for k in range(flat.shape[1])], axis=1)
    return out.reshape(values.shape)


def _gait(phase: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """Walking-to-running gait ``(T, 24, 3)``: amplitudes grow with ``speed (T,)`` m/s."""
    run = np.clip((speed - 1.8) / 1.2, 0.0, 1.0)
    move = np.clip(speed / 1.0, 0.0, 1.0)
    s, c = np.sin(phase), np.cos(phase)
    e = np.zeros((len(phase), NUM_JOINTS, 3))
    hip = move * (0.45 + 0.35 * run)
    e[:, L_HIP, 0] = -hip * s - 0.1 * run
    e[:, R_HIP, 0] = hip * s - 0.1 * run
    # The knee bends mostly while the leg swings forward (phase shifted ahead of the hip).
    swing_l = ((np.sin(phase + 1.1) + 1) / 2) ** 2
    swing_r = ((np.sin(phase + 1.1 + np.pi) + 1) / 2) ** 2
    knee = move * (0.9 + 0.9 * run)
    e[:, L_KNEE, 0] = 0.08 + knee * swing_l
    e[:, R_KNEE, 0] = 0.08 + knee * swing_r
    e[:, L_ANKLE, 0] = move * 0.2 * np.sin(phase - 0.8)
    e[:, R_ANKLE, 0] = -move * 0.2 * np.sin(phase - 0.8)
    arm = move * (0.3 + 0.5 * run)
    e[:, L_SHOULDER, 0] = arm * s
    e[:, R_SHOULDER, 0] = -arm * s
    e[:, L_SHOULDER, 2] = -1.25
    e[:, R_SHOULDER, 2] = 1.25
    elbow = 0.25 + 1.1 * run
    e[:, L_ELBOW, 1] = -elbow - 0.15 * move * (1 - s)
    e[:, R_ELBOW, 1] = elbow + 0.15 * move * (1 + s)
    e[:, SPINE1, 0] = 0.03 + 0.15 * run
    e[:, SPINE2, 1] = 0.1 * move * s
    e[:, PELVIS, 1] = -0.12 * move * s
    e[:, PELVIS, 2] = 0.04 * move * c
    return e


def _idle(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    e = np.zeros((len(t), NUM_JOINTS, 3))
    sway = np.sin(2 * np.pi * rng.uniform(0.15, 0.4) * t + rng.uniform(0, 2 * np.pi))
    e[:, PELVIS, 2] = 0.04 * sway
    e[:, L_HIP, 2] = -0.04 * sway + 0.05
    e[:, R_HIP, 2] = -0.04 * sway - 0.05
    e[:, L_SHOULDER, 2] = -1.25 + 0.05 * sway
    e[:, R_SHOULDER, 2] = 1.25 + 0.05 * sway
    e[:, L_ELBOW, 1] = -0.2
    e[:, R_ELBOW, 1] = 0.2
    e[:, NECK, 1] = rng.uniform(-0.4, 0.4) * np.sin(2 * np.pi * 0.2 * t)
    e[:, HEAD, 0] = rng.uniform(-0.2, 0.3)
    return e


def _crouch(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    depth = rng.uniform(0.5, 1.0)
    e = np.zeros((len(t), NUM_JOINTS, 3))
    e[:, L_HIP, 0] = e[:, R_HIP, 0] = -1.9 * depth
    e[:, L_HIP, 2], e[:, R_HIP, 2] = 0.2 * depth, -0.2 * depth
    e[:, L_KNEE, 0] = e[:, R_KNEE, 0] = 2.2 * depth
    # Keep the feet flat: the shin leans forward by knee - hip, the ankle cancels it.
    e[:, L_ANKLE, 0] = e[:, R_ANKLE, 0] = -0.3 * depth
    e[:, SPINE1, 0] = e[:, SPINE2, 0] = 0.3 * depth
    e[:, L_SHOULDER, 0] = e[:, R_SHOULDER, 0] = -0.9 * depth
    e[:, L_SHOULDER, 2], e[:, R_SHOULDER, 2] = -1.1, 1.1
    e[:, L_ELBOW, 1], e[:, R_ELBOW, 1] = -0.6, 0.6
    e[:, HEAD, 0] = -0.3 * depth
    return e


def _reach(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    e = _idle(t, rng)
    side = rng.integers(2)
    shoulder, elbow = (L_SHOULDER, L_ELBOW) if side == 0 else (R_SHOULDER, R_ELBOW)
    sign = -1.0 if side == 0 else 1.0
    wave = np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t)
    e[:, shoulder, 0] = rng.uniform(-2.6, -1.2) + 0.3 * wave
    e[:, shoulder, 2] = sign * rng.uniform(0.2, 1.0)
    e[:, elbow, 1] = sign * (0.3 + 0.3 * (1 + wave) / 2)
    e[:, SPINE2, 0] = rng.uniform(0.0, 0.3)
    e[:, SPINE2, 1] = -sign * 0.2
    e[:, HEAD, 0] = -0.2
    return e


def _jump(t: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Repeated jumps: angles ``(T, 24, 3)`` and lift ``(T,)`` metres (flight when sin > 0)."""
    height = rng.uniform(0.15, 0.4)
    phase = 2 * np.pi * t / rng.uniform(0.9, 1.3) + rng.uniform(0, 2 * np.pi)
    flight = np.clip(np.sin(phase), 0, None)
    squat = (np.clip(-np.sin(phase), 0, None)) ** 1.5
    lift = height * flight**1.5
    e = np.zeros((len(t), NUM_JOINTS, 3))
    e[:, L_HIP, 0] = e[:, R_HIP, 0] = -0.3 - 0.8 * squat - 0.3 * flight
    e[:, L_KNEE, 0] = e[:, R_KNEE, 0] = 0.3 + 1.1 * squat + 0.4 * flight
    e[:, L_ANKLE, 0] = e[:, R_ANKLE, 0] = -0.2 * squat + 0.4 * flight
    e[:, SPINE1, 0] = 0.3 * squat
    arms = -0.3 * squat - 1.2 * flight
    e[:, L_SHOULDER, 0] = e[:, R_SHOULDER, 0] = arms + 0.3
    e[:, L_SHOULDER, 2], e[:, R_SHOULDER, 2] = -1.1, 1.1
    e[:, L_ELBOW, 1], e[:, R_ELBOW, 1] = -0.3, 0.3
    return e, lift


def _dance(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    e = np.zeros((len(t), NUM_JOINTS, 3))
    beat = 2 * np.pi * rng.uniform(0.5, 1.1) * t

    def wave(amplitude: float) -> np.ndarray:
        return amplitude * np.sin(beat * rng.choice([0.5, 1.0]) + rng.uniform(0, 2 * np.pi))

    e[:, L_SHOULDER, 0], e[:, R_SHOULDER, 0] = wave(1.0) - 0.5, wave(1.0) - 0.5
    e[:, L_SHOULDER, 2], e[:, R_SHOULDER, 2] = wave(0.7) - 0.7, wave(0.7) + 0.7
    e[:, L_SHOULDER, 1], e[:, R_SHOULDER, 1] = wave(0.4), wave(0.4)
    e[:, L_ELBOW, 1], e[:, R_ELBOW, 1] = -1.0 + wave(0.8), 1.0 + wave(0.8)
    bounce = (np.sin(beat) + 1) / 2
    e[:, L_HIP, 0] = e[:, R_HIP, 0] = -0.3 * bounce
    e[:, L_KNEE, 0] = e[:, R_KNEE, 0] = 0.5 * bounce + 0.05
    e[:, L_ANKLE, 0] = e[:, R_ANKLE, 0] = -0.2 * bounce
    e[:, PELVIS, 2] = wave(0.12)
    e[:, L_HIP, 2], e[:, R_HIP, 2] = 0.1 + wave(0.1), -0.1 + wave(0.1)
    e[:, SPINE2, 1] = wave(0.3)
    e[:, SPINE3, 2] = wave(0.2)
    e[:, HEAD, 1] = wave(0.3)
    return e


def sample_motion(
    rng: np.random.Generator,
    num_frames: int,
    config: MotionConfig,
    start_xz: tuple[float, float] = (0.0, 0.0),
    start_heading: float = 0.0,
    locomotion_only: bool = False,
    turn_scale: float = 1.0,
) -> PersonMotion:
    """Sample one person's motion over ``num_frames`` frames.

    Args:
        rng: the random generator (the only source of randomness).
        start_xz: ground position at frame 0, metres.
        start_heading: heading at frame 0, radians (0 faces world +z).
        locomotion_only: every segment walks or runs (people crossing the scene).
        turn_scale: multiplies the sampled turn rates (0 walks straight lines).
    """
    dt = 1.0 / config.fps
    t = np.arange(num_frames) * dt
    # Segments cover the clip; a random start offset makes frame 0 fall anywhere in a segment.
    durations, activity = [], []
    total = -rng.uniform(0, config.segment_seconds[1])
    while total < t[-1] + dt:
        durations.append(rng.uniform(*config.segment_seconds))
        probabilities = np.asarray(config.activity_probabilities, dtype=np.float64)
        activity.append(0 if locomotion_only else int(rng.choice(len(ACTIVITIES), p=probabilities / probabilities.sum())))
        total += durations[-1]
    starts = np.cumsum([0.0] + durations[:-1]) + (total - sum(durations))
    segment = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(durations) - 1)
    seg_activity = np.asarray(activity)[segment]

    running = rng.random(len(durations)) < config.run_probability
    seg_speed = np.where(running, rng.uniform(*config.run_speed, len(durations)), rng.uniform(*config.walk_speed, len(durations)))
    dance_speed = rng.uniform(0.0, 0.3, len(durations))
    speed_per_segment = np.where(np.asarray(activity) == 0, seg_speed, np.where(np.asarray(activity) == 5, dance_speed, 0.0))
    turn_per_segment = rng.normal(0.0, config.turn_rate_std, len(durations)) * turn_scale
    # Occasional sharp turns while standing or walking.
    sharp = rng.random(len(durations)) < 0.15 * turn_scale
    turn_per_segment = np.where(sharp, rng.choice([-1.2, 1.2], len(durations)), turn_per_segment)

    window = max(2, round(config.blend_seconds * config.fps))
    weights = _smooth(np.eye(len(ACTIVITIES))[seg_activity], window)
    weights /= weights.sum(axis=1, keepdims=True)
    speed = _smooth(speed_per_segment[segment], window)
    turn_rate = _smooth(turn_per_segment[segment], window)

    # Stride length grows with speed (about 1.4 m per gait cycle walking, 2.6 m running).
    stride = np.interp(speed, [0.0, 1.8, 3.0], [1.2, 1.6, 2.6])
    phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.cumsum(speed / stride) * dt
    channels = [
        _gait(phase, speed),
        _idle(t, rng),
        _crouch(t, rng),
        _reach(t, rng),
    ]
    jump_angles, jump_lift = _jump(t, rng)
    channels += [jump_angles, _dance(t, rng)]
    euler = np.einsum("tk,ktjc->tjc", weights, np.stack(channels))
    euler = np.clip(euler, JOINT_LIMITS[:, :, 0], JOINT_LIMITS[:, :, 1])
    lift = weights[:, ACTIVITIES.index("jump")] * jump_lift

    heading = start_heading + np.concatenate([[0.0], np.cumsum(turn_rate[:-1]) * dt])
    direction = np.stack([np.sin(heading), np.cos(heading)], axis=-1)
    step = speed[:, None] * direction * dt
    ground_xz = np.asarray(start_xz, np.float64) + np.concatenate([np.zeros((1, 2)), np.cumsum(step[:-1], axis=0)])
    return PersonMotion(euler=euler, heading=heading, ground_xz=ground_xz, lift=lift, activity=weights.argmax(axis=1))
