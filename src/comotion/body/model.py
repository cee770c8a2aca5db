"""The body-model layer: one SMPL-layout model class over plain tensors, whatever the source.

A :class:`BodyModel` holds the arrays of a linear-blend-skinning body (template, shape and pose
blend shapes, joint regressor, skinning weights, kinematic tree) plus two keypoint regressors:
the 5 face points CoMotion appends to the first 22 joints and the 17 COCO keypoints.  Calling
it maps SMPL parameters to a :class:`BodyOutput`.

In the model's own frame y is up and the body faces +z (as in SMPL); CoMotion rotates people
into the camera frame through the root orientation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from comotion.body.lbs import forward_kinematics, pose_rotations, shape_joints, skin_vertices

NUM_JOINTS = 24
NUM_BETAS = 10
NUM_BODY_JOINTS_IN_KEYPOINTS = 22
FACE_POINT_NAMES = ("nose", "right_eye", "left_eye", "right_ear", "left_ear")


@dataclass
class BodyOutput:
    """Posed body, camera/world frame of the inputs, metres.  ``...`` = the inputs' batch dims.

    Attributes:
        joints: ``(..., 24, 3)`` SMPL joints.
        keypoints: ``(..., 27, 3)`` CoMotion keypoints: joints 0-21, nose, right eye, left eye,
            right ear, left ear.
        coco: ``(..., 17, 3)`` COCO keypoints, or ``None`` unless requested.
        vertices: ``(..., V', 3)`` requested mesh vertices, or ``None``.
    """

    joints: torch.Tensor
    keypoints: torch.Tensor
    coco: torch.Tensor | None = None
    vertices: torch.Tensor | None = None


class BodyModel(nn.Module):
    """SMPL-layout linear-blend-skinning body model.

    Args:
        v_template: ``(V, 3)`` rest vertices.
        shapedirs: ``(V, 3, 10)`` shape blend shapes.
        J_regressor: ``(24, V)`` joint regressor.
        weights: ``(V, 24)`` skinning weights.
        parents: 24 parent indices, ``parents[0] = -1``.
        faces: ``(F, 3)`` triangle vertex indices.
        keypoint_regressor: ``(5, V)`` face points (nose, right eye, left eye, right ear, left ear)
            as combinations of posed vertices.
        coco_regressor: ``(17, V)`` COCO keypoints from posed vertices, or ``None``.
        posedirs: ``(V, 3, 207)`` pose blend shapes, or ``None`` (zeros).
        name: recorded in every output file so results say which body produced them.
    """

    def __init__(
        self,
        v_template: torch.Tensor,
        shapedirs: torch.Tensor,
        J_regressor: torch.Tensor,
        weights: torch.Tensor,
        parents: list[int],
        faces: torch.Tensor,
        keypoint_regressor: torch.Tensor,
        coco_regressor: torch.Tensor | None = None,
        posedirs: torch.Tensor | None = None,
        name: str = "body",
    ) -> None:
        super().__init__()
        num_vertices = v_template.shape[0]
        expected = {
            "v_template": (v_template, (num_vertices, 3)),
            "shapedirs": (shapedirs, (num_vertices, 3, NUM_BETAS)),
            "J_regressor": (J_regressor, (NUM_JOINTS, num_vertices)),
            "weights": (weights, (num_vertices, NUM_JOINTS)),
            "keypoint_regressor": (keypoint_regressor, (len(FACE_POINT_NAMES), num_vertices)),
        }
        if coco_regressor is not None:
            expected["coco_regressor"] = (coco_regressor, (17, num_vertices))
        if posedirs is not None:
            expected["posedirs"] = (posedirs, (num_vertices, 3, 9 * (NUM_JOINTS - 1)))
        for field, (value, shape) in expected.items():
            if tuple(value.shape) != shape:
                raise ValueError(f"body model '{name}': {field} has shape {tuple(value.shape)}, expected {shape}")
        if len(parents) != NUM_JOINTS or parents[0] != -1:
            raise ValueError(f"body model '{name}': parents must list 24 joints with parents[0] = -1")

        self.name = name
        self.parents = [int(p) for p in parents]
        self.register_buffer("v_template", v_template.float())
        self.register_buffer("shapedirs", shapedirs.float())
        self.register_buffer("J_regressor", J_regressor.float())
        self.register_buffer("weights", weights.float())
        self.register_buffer("faces", faces.long(), persistent=False)
        self.register_buffer("posedirs", None if posedirs is None else posedirs.float())
        self.register_buffer("coco_regressor", None if coco_regressor is None else coco_regressor.float())
        # Derived once: the joint regressor applied to template and shape directions.
        self.register_buffer("joint_template", self.J_regressor @ self.v_template, persistent=False)
        self.register_buffer(
            "joint_shapedirs", torch.einsum("jv,vcb->jcb", self.J_regressor, self.shapedirs), persistent=False
        )
        # Face points only depend on the few vertices their regressor touches: skin just those.
        support = keypoint_regressor.abs().sum(dim=0).nonzero()[:, 0]
        self.register_buffer("face_vertex_ids", support, persistent=False)
        self.register_buffer("face_regressor", keypoint_regressor.float()[:, support], persistent=False)

    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    @property
    def has_coco(self) -> bool:
        return self.coco_regressor is not None

    def extra_repr(self) -> str:
        return f"name={self.name!r}, vertices={self.num_vertices}, coco={self.has_coco}"

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """Joints ``(..., 24, 3)`` of the zero pose (T-pose) for shape ``betas (..., 10)``."""
        return shape_joints(self.joint_template, self.joint_shapedirs, betas)

    def _vertex_ids(self, vertices) -> torch.Tensor | None:
        if vertices is None:
            return None
        if isinstance(vertices, str):
            if vertices != "all":
                raise ValueError(f"vertices must be 'all', a stride or an index tensor, got {vertices!r}")
            return torch.arange(self.num_vertices, device=self.v_template.device)
        if isinstance(vertices, int):
            return torch.arange(0, self.num_vertices, vertices, device=self.v_template.device)
        return torch.as_tensor(vertices, dtype=torch.long, device=self.v_template.device)

    def forward(
        self,
        betas: torch.Tensor,
        pose: torch.Tensor,
        trans: torch.Tensor | None = None,
        *,
        coco: bool = False,
        vertices=None,
    ) -> BodyOutput:
        """Pose the body.

        Args:
            betas: ``(..., 10)`` shape coefficients.
            pose: ``(..., 72)`` axis-angle rotations of the 24 joints, root first (radians).
            trans: ``(..., 3)`` translation added to every output point, or ``None``.
            coco: also compute the 17 COCO keypoints (needs the whole mesh).
            vertices: ``None``, ``"all"``, an int stride ``r`` (vertices 0, r, 2r, ...) or indices.
        """
        if betas.shape[-1] != NUM_BETAS or pose.shape[-1] != 3 * NUM_JOINTS:
            raise ValueError(
                f"expected betas (..., {NUM_BETAS}) and pose (..., {3 * NUM_JOINTS}), "
                f"got {tuple(betas.shape)} and {tuple(pose.shape)}"
            )
        batch = torch.broadcast_shapes(betas.shape[:-1], pose.shape[:-1])
        betas = betas.expand(*batch, NUM_BETAS)
        pose = pose.expand(*batch, 3 * NUM_JOINTS)

        rotations = pose_rotations(pose)
        rest = self.rest_joints(betas)
        global_rot, joints = forward_kinematics(rotations, rest, self.parents)

        if coco and self.coco_regressor is None:
            raise ValueError(f"body model '{self.name}' has no COCO keypoint regressor")
        requested = self._vertex_ids(vertices)
        full_mesh = coco or (requested is not None and requested.numel() == self.num_vertices)
        skin_ids = torch.arange(self.num_vertices, device=pose.device) if full_mesh else self.face_vertex_ids
        if requested is not None and not full_mesh:
            skin_ids = torch.cat([skin_ids, requested])
        mesh = self._skin(skin_ids, betas, rotations, global_rot, joints, rest)

        if full_mesh:
            face_points = self.face_regressor @ mesh[..., self.face_vertex_ids, :]
            mesh_out = mesh[..., requested, :] if requested is not None else None
        else:
            n_face = self.face_vertex_ids.numel()
            face_points = self.face_regressor @ mesh[..., :n_face, :]
            mesh_out = mesh[..., n_face:, :] if requested is not None else None
        # The COCO regressor averages every vertex; accumulating 6890 float32 products drifts by
        # ~1e-5, so sum in float64 (the result is independent of the reduction order).
        coco_points = (self.coco_regressor.double() @ mesh.double()).to(mesh.dtype) if coco else None

        keypoints = torch.cat([joints[..., :NUM_BODY_JOINTS_IN_KEYPOINTS, :], face_points], dim=-2)
        if trans is not None:
            offset = trans[..., None, :]
            joints = joints + offset
            keypoints = keypoints + offset
            coco_points = None if coco_points is None else coco_points + offset
            mesh_out = None if mesh_out is None else mesh_out + offset
        return BodyOutput(joints=joints, keypoints=keypoints, coco=coco_points, vertices=mesh_out)

    def keypoints(self, betas: torch.Tensor, pose: torch.Tensor, trans: torch.Tensor | None = None) -> torch.Tensor:
        """The 27 CoMotion keypoints ``(..., 27, 3)`` (the tracker's hot path: skins 5 vertices)."""
        return self.forward(betas, pose, trans).keypoints

    def _skin(self, ids, betas, rotations, global_rot, joints, rest) -> torch.Tensor:
        shaped = self.v_template[ids] + torch.einsum("vcb,...b->...vc", self.shapedirs[ids], betas)
        posedirs = None if self.posedirs is None else self.posedirs[ids]
        return skin_vertices(shaped, self.weights[ids], rotations, global_rot, joints, rest, posedirs)
