"""Linear blend skinning over plain tensors (the math of SMPL-layout body models, spec section 5).

Nothing here reads files or holds state: a body model passes its buffers in.  Shapes use
``...`` for any leading batch dimensions, J = 24 joints, V = vertices.
"""

from __future__ import annotations

import torch

from comotion.geometry.rotations import axis_angle_to_matrix


def shape_joints(
    joint_template: torch.Tensor, joint_shapedirs: torch.Tensor, betas: torch.Tensor
) -> torch.Tensor:
    """Rest-pose joints ``(..., J, 3)`` for shape ``betas (..., B)``.

    ``joint_template (J, 3)`` and ``joint_shapedirs (J, 3, B)`` are the joint regressor applied to
    the template and to the shape directions (precomputed once by the body model).
    """
    return joint_template + torch.einsum("jcb,...b->...jc", joint_shapedirs, betas)


def forward_kinematics(
    rotations: torch.Tensor, rest_joints: torch.Tensor, parents: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Global joint rotations ``(..., J, 3, 3)`` and positions ``(..., J, 3)``.

    Local transforms rotate about each joint's rest position; the root's offset is its own rest
    position (no global translation is added here).
    """
    offsets = torch.cat(
        [rest_joints[..., :1, :], rest_joints[..., 1:, :] - rest_joints[..., parents[1:], :]], dim=-2
    )
    global_rot = [rotations[..., 0, :, :]]
    global_pos = [offsets[..., 0, :]]
    for k in range(1, len(parents)):
        p = parents[k]
        global_rot.append(global_rot[p] @ rotations[..., k, :, :])
        global_pos.append((global_rot[p] @ offsets[..., k, :, None])[..., 0] + global_pos[p])
    return torch.stack(global_rot, dim=-3), torch.stack(global_pos, dim=-2)


def skin_vertices(
    rest_vertices: torch.Tensor,
    skinning_weights: torch.Tensor,
    rotations: torch.Tensor,
    global_rot: torch.Tensor,
    global_pos: torch.Tensor,
    rest_joints: torch.Tensor,
    posedirs: torch.Tensor | None = None,
) -> torch.Tensor:
    """Posed vertices ``(..., V, 3)`` (no global translation).

    Args:
        rest_vertices: shaped template ``(..., V, 3)``.
        skinning_weights: ``(V, J)``.
        rotations: local joint rotations ``(..., J, 3, 3)`` (for pose-corrective blend shapes).
        global_rot, global_pos: from :func:`forward_kinematics`.
        rest_joints: ``(..., J, 3)``.
        posedirs: ``(V, 3, 9 * (J - 1))`` pose blend shapes or ``None`` (treated as zeros).

    The blended transform is divided by its homogeneous coordinate (the weight sum, quirk Q13):
    identical for normalised weights, and what the reference does for arbitrary ones.
    """
    vertices = rest_vertices
    if posedirs is not None:
        eye = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
        pose_feature = (rotations[..., 1:, :, :] - eye).flatten(-3)
        vertices = vertices + torch.einsum("vcp,...p->...vc", posedirs, pose_feature)
    # Relative transforms A_k: rotation G_k.R, translation G_k.t - G_k.R J_k.
    rel_pos = global_pos - (global_rot @ rest_joints[..., None])[..., 0]
    blend_rot = torch.einsum("vj,...jab->...vab", skinning_weights, global_rot)
    blend_pos = torch.einsum("vj,...ja->...va", skinning_weights, rel_pos)
    weight_sum = skinning_weights.sum(dim=-1)[:, None]
    return ((blend_rot @ vertices[..., None])[..., 0] + blend_pos) / weight_sum


def pose_rotations(pose: torch.Tensor) -> torch.Tensor:
    """Axis-angle pose ``(..., J*3)`` -> local rotation matrices ``(..., J, 3, 3)``."""
    return axis_angle_to_matrix(pose.reshape(*pose.shape[:-1], -1, 3))
