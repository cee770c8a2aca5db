"""Per-track motion files for animation and biomechanics tools: AMASS-style ``.npz``.

CoMotion's poses live in the camera frame (x right, y down, z forward).  Motion tools expect a
gravity-aligned world, so each export rotates the whole body by a fixed camera-to-world rotation:
the root orientation becomes ``C @ R_root`` and the translation is re-solved so that every joint
moves to ``C @ p`` (rotation about the pelvis: ``trans' = C (J0 + trans) - J0`` with ``J0`` the
rest pelvis of the track's shape).  The camera is assumed level; ``camera_to_world`` is stored so
the transform can be undone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from comotion.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

# AMASS convention: z up; people in front of the camera stand along +y.
CAMERA_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
# BVH convention: y up; the camera looks along -z.
CAMERA_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


def reorient_body(
    body, betas: torch.Tensor, pose: torch.Tensor, trans: torch.Tensor, rotation: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate posed bodies rigidly by ``rotation (3, 3)``: returns ``(pose (T, 72), trans (T, 3))``.

    ``body(betas, pose', trans').joints == rotation @ body(betas, pose, trans).joints`` (the root
    rotates about the rest pelvis, so the translation absorbs the pelvis offset).
    """
    C = torch.as_tensor(rotation, dtype=pose.dtype, device=pose.device)
    root = axis_angle_to_matrix(pose[..., :3])
    new_root = matrix_to_axis_angle(C @ root)
    pelvis = body.rest_joints(betas)[..., 0, :].to(pose)
    new_trans = (pelvis + trans) @ C.T - pelvis
    return torch.cat([new_root, pose[..., 3:]], dim=-1), new_trans


def write_amass(
    path: str | Path,
    body,
    betas: np.ndarray,
    pose: np.ndarray,
    trans: np.ndarray,
    frame_indices: np.ndarray,
    fps: float,
    rotation: np.ndarray = CAMERA_TO_Z_UP,
) -> None:
    """Write one track as an AMASS-style ``.npz``.

    Args:
        betas: ``(10,)`` shape of the track (constant over a track).
        pose: ``(T, 72)`` axis-angle, camera frame; trans: ``(T, 3)`` metres, camera frame.
        frame_indices: ``(T,)`` processed-frame index of every pose.
        fps: ``mocap_framerate`` (frames per second of the processed frames).
        rotation: camera-to-world rotation applied (default: AMASS's z-up).

    Keys written: ``poses (T, 72)``, ``trans (T, 3)``, ``betas (10,)``, ``mocap_framerate``,
    ``frame_indices (T,)``, ``gender`` (``"neutral"``), ``surface_model_type`` (body model name),
    ``camera_to_world (3, 3)``.
    """
    betas_t = torch.as_tensor(np.asarray(betas, np.float32))
    pose_w, trans_w = reorient_body(
        body,
        betas_t.expand(len(pose), -1),
        torch.as_tensor(np.asarray(pose, np.float32)),
        torch.as_tensor(np.asarray(trans, np.float32)),
        rotation,
    )
    np.savez(
        path,
        poses=pose_w.numpy(),
        trans=trans_w.numpy(),
        betas=betas_t.numpy(),
        mocap_framerate=np.float64(fps),
        frame_indices=np.asarray(frame_indices, np.int64),
        gender=np.array("neutral"),
        surface_model_type=np.array(body.name),
        camera_to_world=np.asarray(rotation, np.float64),
    )
