"""BVH motion capture files from tracked SMPL-layout bodies.

The skeleton is the body model's 24-joint tree; bone offsets are the rest (zero-pose) joints of
the track's own shape.  The world is y-up with the camera looking along -z (see
:data:`comotion.io.motion.CAMERA_TO_Y_UP`).  The root has six channels
``Xposition Yposition Zposition Zrotation Yrotation Xrotation`` (ROOT ``OFFSET`` is zero, so the
position channels are the pelvis position), every other joint three rotation channels; rotations
are intrinsic Z-Y-X Euler angles in degrees (``R = Rz @ Ry @ Rx``), continuous over time (see
:func:`continuous_euler`).  Units are metres times ``scale`` (``scale=100`` gives centimetres).

Several tracks can share one file as separate ``ROOT`` hierarchies (joint names prefixed with
the track id); frames where a track does not exist repeat its nearest pose.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from comotion.geometry.rotations import axis_angle_to_matrix
from comotion.io.motion import CAMERA_TO_Y_UP

JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hand", "right_hand",
)  # fmt: skip


@dataclass
class BvhSkeletonMotion:
    """One skeleton's motion, y-up world, ready to write.

    Attributes:
        name: prefix of the joint names (``""`` for a single-track file).
        offsets: ``(24, 3)`` rest offsets of each joint from its parent (root: zeros), metres.
        root_position: ``(T, 3)`` pelvis position per frame, metres.
        rotations: ``(T, 24, 3, 3)`` local joint rotations (root: global orientation).
        parents: 24 parent indices (``-1`` for the root).
    """

    name: str
    offsets: np.ndarray
    root_position: np.ndarray
    rotations: np.ndarray
    parents: list[int]


def skeleton_motion(
    body,
    betas: np.ndarray,
    pose: np.ndarray,
    trans: np.ndarray,
    name: str = "",
    rotation: np.ndarray = CAMERA_TO_Y_UP,
) -> BvhSkeletonMotion:
    """Turn one track (``betas (10,)``, ``pose (T, 72)``, ``trans (T, 3)``, camera frame) into BVH
    joint data in the world given by ``rotation`` (camera-to-world, default y-up)."""
    betas_t = torch.as_tensor(np.asarray(betas, np.float32))
    rest = body.rest_joints(betas_t).double().cpu().numpy()
    parents = list(body.parents)
    offsets = rest - rest[[max(p, 0) for p in parents]]
    offsets[0] = 0.0
    local = axis_angle_to_matrix(torch.as_tensor(np.asarray(pose, np.float64)).reshape(-1, 24, 3)).numpy()
    C = np.asarray(rotation, np.float64)
    local[:, 0] = C @ local[:, 0]
    root_position = (rest[0] + np.asarray(trans, np.float64)) @ C.T
    return BvhSkeletonMotion(name, offsets, root_position, local, parents)


def _children(parents: list[int]) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {j: [] for j in range(len(parents))}
    for joint, parent in enumerate(parents):
        if parent >= 0:
            children[parent].append(joint)
    return children


def _hierarchy_lines(skeleton: BvhSkeletonMotion, scale: float) -> list[str]:
    children = _children(skeleton.parents)
    lines: list[str] = []

    def emit(joint: int, depth: int) -> None:
        pad = "  " * depth
        keyword = "ROOT" if skeleton.parents[joint] < 0 else "JOINT"
        x, y, z = skeleton.offsets[joint] * scale
        lines.append(f"{pad}{keyword} {skeleton.name}{JOINT_NAMES[joint]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {x:.6f} {y:.6f} {z:.6f}")
        if keyword == "ROOT":
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation")
        else:
            lines.append(f"{pad}  CHANNELS 3 Zrotation Yrotation Xrotation")
        for child in children[joint]:
            emit(child, depth + 1)
        if not children[joint]:
            # End sites continue the bone by half its length so viewers draw the last segment.
            ex, ey, ez = 0.5 * skeleton.offsets[joint] * scale
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {ex:.6f} {ey:.6f} {ez:.6f}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    emit(0, 0)
    return lines


def _joint_order(parents: list[int]) -> list[int]:
    """Depth-first order in which joints appear in the hierarchy (and in the motion channels)."""
    children = _children(parents)
    order, stack = [], [0]
    while stack:
        joint = stack.pop()
        order.append(joint)
        stack.extend(reversed(children[joint]))
    return order


def _motion_columns(skeleton: BvhSkeletonMotion, scale: float) -> np.ndarray:
    """``(T, 3 + 3 * 24)`` channel values in hierarchy order."""
    order = _joint_order(skeleton.parents)
    num_frames = skeleton.rotations.shape[0]
    flat = skeleton.rotations[:, order].reshape(-1, 3, 3)
    euler = Rotation.from_matrix(flat).as_euler("ZYX", degrees=True).reshape(num_frames, len(order), 3)
    return np.concatenate([skeleton.root_position * scale, continuous_euler(euler).reshape(num_frames, -1)], axis=1)


def continuous_euler(euler: np.ndarray) -> np.ndarray:
    """Make Z-Y-X Euler angles ``(T, J, 3)`` degrees continuous over time.

    Each rotation has two Z-Y-X solutions, ``(z, y, x)`` and ``(z + 180, 180 - y, x + 180)``, and
    every angle is defined modulo 360; per frame, take the solution and multiples of 360 closest
    to the previous frame (a spin about Y then runs through 90 degrees instead of flipping).
    """
    alternative = euler + np.array([180.0, 0.0, 180.0])
    alternative[..., 1] = 180.0 - euler[..., 1]
    out = np.empty_like(euler)
    out[0] = euler[0]
    for t in range(1, len(euler)):
        candidates = np.stack([euler[t], alternative[t]])
        candidates += 360.0 * np.round((out[t - 1] - candidates) / 360.0)
        distance = np.abs(candidates - out[t - 1]).sum(-1)
        out[t] = np.where((distance[1] < distance[0])[:, None], candidates[1], candidates[0])
    return out


def write_bvh(path: str | Path, skeletons: list[BvhSkeletonMotion], fps: float, scale: float = 1.0) -> None:
    """Write one or more skeletons (same number of frames each) into one BVH file."""
    if not skeletons:
        raise ValueError("write_bvh needs at least one skeleton")
    num_frames = skeletons[0].rotations.shape[0]
    if any(s.rotations.shape[0] != num_frames for s in skeletons):
        raise ValueError("all skeletons of a BVH file need the same number of frames")
    lines = ["HIERARCHY"]
    for skeleton in skeletons:
        lines.extend(_hierarchy_lines(skeleton, scale))
    lines += ["MOTION", f"Frames: {num_frames}", f"Frame Time: {1.0 / fps:.8f}"]
    motion = np.concatenate([_motion_columns(s, scale) for s in skeletons], axis=1)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
        np.savetxt(f, motion, fmt="%.5f")


def hold_to_frames(values: np.ndarray, frame_indices: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Resample per-frame ``values (T, ...)`` known at ``frame_indices (T,)`` (ascending) onto
    ``frames (F,)``, repeating the nearest known value outside and inside gaps (previous value)."""
    position = np.searchsorted(frame_indices, frames, side="right") - 1
    return values[np.clip(position, 0, len(frame_indices) - 1)]
