"""Geometry the whole pipeline shares: rotations, the pinhole camera, keypoint similarity, NMS."""

from comotion.geometry.camera import (
    boxes_from_points,
    clamp_boxes_reference,
    default_intrinsics,
    pixels_to_camera,
    points_in_image,
    project_points,
)
from comotion.geometry.nms import oks_nms
from comotion.geometry.rotations import (
    apply_pose_delta,
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    compose_axis_angle,
    matrix_to_axis_angle,
    quaternion_multiply,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
)
from comotion.geometry.similarity import LIMBS, oks_similarity, skeleton_scale

__all__ = [
    "LIMBS",
    "apply_pose_delta",
    "axis_angle_to_matrix",
    "axis_angle_to_quaternion",
    "boxes_from_points",
    "clamp_boxes_reference",
    "compose_axis_angle",
    "default_intrinsics",
    "matrix_to_axis_angle",
    "oks_nms",
    "oks_similarity",
    "pixels_to_camera",
    "points_in_image",
    "project_points",
    "quaternion_multiply",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
    "skeleton_scale",
]
