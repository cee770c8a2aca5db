"""Detection module (spec sections 2-4): encoder, pyramid head, candidate decoding, pyramid fusion.

:class:`DetectionNetwork` has exactly the official ``comotion_detection_checkpoint.pt`` layout
(``pos_embedding``, ``rot_embedding``, ``image_backbone``, ``detection_head``, ``pose_decoder``,
``fuse_features``).  Its output, :class:`DetectionOutput`, holds every candidate of the image;
:func:`select_candidates` turns them into SMPL parameters, keypoints and NMS-selected detections.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.models.convnext import ConvNeXtBlock
from torch import nn

from comotion.geometry.camera import project_points
from comotion.geometry.nms import oks_nms
from comotion.geometry.rotations import apply_pose_delta
from comotion.model.blocks import LayerNorm2d, PoseDecoder, PosEmbed, use_onednn_linear
from comotion.model.config import ModelConfig
from comotion.model.encoder import ImageBackbone, RotaryIntrinsics

NUM_BETAS = 10
POSE_DECODER_SCALE = 0.3  # body-pose deltas are decoded at 0.3x (detection and update alike)
NUM_LEVELS = 3


class DownBlock(nn.Module):
    """``Conv 2x2/2 -> ConvNeXt block (with layer scale) -> LayerNorm2d``: halves the resolution."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_dim, out_dim, kernel_size=2, stride=2),
            ConvNeXtBlock(out_dim),
            LayerNorm2d(out_dim),
            nn.Dropout(0.0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DetectionHead(nn.Module):
    """Three-level pyramid (1/32, 1/64, 1/128 of the input) and a 1x1 decoder per level.

    ``(B, D, R/8, R/8)`` -> pyramid ``[(B, 2h, R/32, R/32), (B, 2h, R/64, ...), (B, 2h, R/128, ...)]``
    and per level ``(B, slots * Q, H_l, W_l)`` raw candidate fields.
    """

    def __init__(self, feature_dim: int, hidden_dim: int, num_slots: int, fields_per_slot: int) -> None:
        super().__init__()
        width = 2 * hidden_dim
        self.enc1 = nn.Sequential(DownBlock(feature_dim, hidden_dim), DownBlock(hidden_dim, width))
        self.enc2 = DownBlock(width, width)
        self.enc3 = DownBlock(width, width)
        self.decoders = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(width, width, kernel_size=1),
                LayerNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, num_slots * fields_per_slot, kernel_size=1),
            )
            for _ in range(NUM_LEVELS)
        )

    def pyramid(self, features: torch.Tensor) -> list[torch.Tensor]:
        x1 = self.enc1(features)
        x2 = self.enc2(x1)
        return [x1, x2, self.enc3(x2)]

    def forward(self, features: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        pyramid = self.pyramid(features)
        return pyramid, [decoder(level) for decoder, level in zip(self.decoders, pyramid)]


class PyramidFusion(nn.Module):
    """Fuses the pyramid back into the stride-8 map the update module attends to (spec 3.6).

    ``dc2`` exists only because the official checkpoint has it (quirk Q14): the 1/32 -> 1/8 step
    is a single 4x4/4 transposed convolution.
    """

    def __init__(self, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        width = 2 * hidden_dim
        self.dc0 = nn.ConvTranspose2d(width, width, kernel_size=2, stride=2)
        self.proj1 = nn.Conv2d(width, width, kernel_size=1)
        self.dc1 = nn.ConvTranspose2d(width, width, kernel_size=2, stride=2)
        self.ln1 = LayerNorm2d(width)
        self.proj2 = nn.Conv2d(width, width, kernel_size=1)
        self.dc2 = nn.ConvTranspose2d(width, width, kernel_size=2, stride=2)
        self.ln2 = LayerNorm2d(width)
        self.dc3 = nn.ConvTranspose2d(width, feature_dim, kernel_size=4, stride=4)
        self.proj3 = nn.Conv2d(feature_dim, feature_dim, kernel_size=1)
        self.ln3 = LayerNorm2d(feature_dim)

    def forward(self, features: torch.Tensor, pyramid: list[torch.Tensor]) -> torch.Tensor:
        x1, x2, x3 = pyramid
        y = self.ln1(F.gelu(self.dc0(x3) + self.proj1(x2)))
        y = self.ln2(F.gelu(self.dc1(y) + self.proj2(x1)))
        return self.ln3(self.dc3(y) + self.proj3(features))


@dataclass
class DetectionOutput:
    """Every candidate of a batch of images (C = num_candidates, 1344 for 512 input).

    Attributes:
        image_features: ``(B, D, R/8, R/8)`` fused features for the update module.
        betas: ``(B, C, 10)``.
        delta_root_orient: ``(B, C, 3)`` axis-angle, composed on the left of the mean root.
        delta_body_pose: ``(B, C, 69)`` axis-angle deltas of the 23 body joints.
        trans: ``(B, C, 3)`` camera frame, metres.
        conf: ``(B, C)`` confidence logits.
        pose_embedding: ``(B, C, E)``.
    """

    image_features: torch.Tensor
    betas: torch.Tensor
    delta_root_orient: torch.Tensor
    delta_body_pose: torch.Tensor
    trans: torch.Tensor
    conf: torch.Tensor
    pose_embedding: torch.Tensor

    def float(self) -> DetectionOutput:
        """Float32 copy (outputs of a reduced-precision run), for the geometry that follows."""
        return DetectionOutput(**{f.name: getattr(self, f.name).float() for f in dataclasses.fields(self)})


def cell_centres(size: int, image_size: int, device=None) -> torch.Tensor:
    """Crop-pixel centres ``(size,)`` of a ``size``-cell grid over ``image_size`` pixels (float32 order of the reference)."""
    return (torch.arange(size, device=device, dtype=torch.float32) / size + 0.5 / size) * image_size


class DetectionNetwork(nn.Module):
    """Image -> all candidate poses + fused image features (official detection-checkpoint layout)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        det, enc = config.detection, config.encoder
        self.fields_per_slot = NUM_BETAS + det.pose_embed_dim + 8
        self.pos_embedding = PosEmbed()  # unused here; stored in the official checkpoint
        self.rot_embedding = RotaryIntrinsics(enc.rot_embed_dim)
        self.image_backbone = ImageBackbone(enc)
        self.detection_head = DetectionHead(enc.output_dim, det.hidden_dim, det.num_slots, self.fields_per_slot)
        self.pose_decoder = PoseDecoder(det.pose_embed_dim, det.hidden_dim)
        self.fuse_features = PyramidFusion(enc.output_dim, det.hidden_dim)
        use_onednn_linear(self)

    def encode(self, image: torch.Tensor, K_crop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(backbone features, conditioned features)``, both ``(B, D, R/8, R/8)``."""
        features = self.image_backbone(image)
        return features, self.rot_embedding(features, K_crop, self.config.detection.pooling)

    def decode_levels(self, levels: list[torch.Tensor], K_crop: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw per-level decoder maps -> candidate fields ``(B, C, ...)`` in level/row/column/slot order."""
        det = self.config.detection
        # Slot layout: betas (10), pose embedding (E), root orientation (3), pixel offset (2),
        # log-depth (1), an unused "scale" (1), confidence logit (1).
        embedding = NUM_BETAS
        root = embedding + det.pose_embed_dim
        offset = root + 3
        log_depth = offset + 2
        conf = log_depth + 2
        image_size = self.config.feature_size * det.pooling
        fx, fy = K_crop[:, 0, 0, None], K_crop[:, 1, 1, None]
        cx, cy = K_crop[:, 0, 2, None], K_crop[:, 1, 2, None]
        fields, translations = [], []
        for level, raw in enumerate(levels):
            batch, _, height, width = raw.shape
            m = max(height, width)
            cand = raw.permute(0, 2, 3, 1).reshape(batch, height, width, det.num_slots, self.fields_per_slot)
            u0 = cell_centres(m, image_size, raw.device)[:width][None, None, :, None]
            v0 = cell_centres(m, image_size, raw.device)[:height][None, :, None, None]
            u = (u0 + cand[..., offset]).flatten(1)
            v = (v0 + cand[..., offset + 1]).flatten(1)
            depth = (fx / (det.depth_adj * 2**level)) / (torch.exp(cand[..., log_depth].flatten(1)) + 0.05)
            translations.append(torch.stack([(u - cx) / fx * depth, (v - cy) / fy * depth, depth], dim=-1))
            fields.append(cand.reshape(batch, -1, self.fields_per_slot))
        fields = torch.cat(fields, dim=1)
        return {
            "betas": fields[..., :embedding],
            "pose_embedding": fields[..., embedding:root],
            "delta_root_orient": fields[..., root:offset],
            "trans": torch.cat(translations, dim=1),
            "conf": fields[..., conf],
        }

    def forward(self, image: torch.Tensor, K_crop: torch.Tensor) -> DetectionOutput:
        """``image (B, 3, R, R)`` normalised, ``K_crop (B, 2, 3)`` -> :class:`DetectionOutput`."""
        _, features = self.encode(image, K_crop)
        pyramid, levels = self.detection_head(features)
        fields = self.decode_levels(levels, K_crop)
        return DetectionOutput(
            image_features=self.fuse_features(features, pyramid),
            delta_body_pose=self.pose_decoder(fields["pose_embedding"]) * POSE_DECODER_SCALE,
            **fields,
        )


@dataclass
class Detections:
    """People of one image, ``M`` of them (all candidates, or the selected ones in decreasing confidence).

    Attributes:
        betas: ``(M, 10)`` SMPL shape.
        pose: ``(M, 72)`` SMPL axis-angle pose (mean pose composed with the predicted deltas).
        trans: ``(M, 3)`` root translation, camera frame, metres.
        keypoints_3d: ``(M, 27, 3)`` 22 joints + 5 face points, camera frame, metres.
        keypoints_2d: ``(M, 27, 2)`` their projections, original-image pixels.
        conf_logit: ``(M,)`` confidence logits (``sigmoid`` gives the probability).
        candidate_index: ``(M,)`` long, index of each person among all network candidates.
    """

    betas: torch.Tensor
    pose: torch.Tensor
    trans: torch.Tensor
    keypoints_3d: torch.Tensor
    keypoints_2d: torch.Tensor
    conf_logit: torch.Tensor
    candidate_index: torch.Tensor

    def __len__(self) -> int:
        return self.betas.shape[0]

    def select(self, index: torch.Tensor) -> Detections:
        """The people at ``index`` (long indices or a bool mask over the M people)."""
        return Detections(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})


def decode_candidates(
    output: DetectionOutput, index: torch.Tensor, mean_pose: torch.Tensor, body, K: torch.Tensor, batch: int = 0
) -> Detections:
    """SMPL parameters and keypoints of candidates ``index (M,)`` of image ``batch``.

    ``K (2, 3)`` is the original image's intrinsics (2-D keypoints in original pixels).
    """
    delta = torch.cat([output.delta_root_orient[batch, index], output.delta_body_pose[batch, index]], dim=-1)
    pose = apply_pose_delta(mean_pose, delta)
    betas, trans = output.betas[batch, index], output.trans[batch, index]
    keypoints_3d = body.keypoints(betas, pose, trans)
    return Detections(
        betas=betas,
        pose=pose,
        trans=trans,
        keypoints_3d=keypoints_3d,
        keypoints_2d=project_points(keypoints_3d, K),
        conf_logit=output.conf[batch, index],
        candidate_index=index,
    )


def select_candidates(
    output: DetectionOutput,
    mean_pose: torch.Tensor,
    body,
    K: torch.Tensor,
    keypoint_normalizer: float = 1024.0,
    std: float = 0.08,
    iou_thr: float = 0.4,
    conf_thr: float = 0.1,
    transitive: bool = False,
    batch: int = 0,
) -> Detections:
    """Decode the confident candidates of image ``batch`` and keep the OKS-NMS survivors.

    Only candidates with ``sigmoid(conf) > conf_thr`` are decoded (the others cannot survive),
    so the cost follows the number of confident candidates, not the grid size.  Survivors come
    in decreasing confidence.  2-D keypoints are compared in pixels / ``keypoint_normalizer``.
    """
    confident = (torch.sigmoid(output.conf[batch]) > conf_thr).nonzero()[:, 0]
    if confident.numel() == 0:
        return _empty_candidates(output, confident)
    decoded = decode_candidates(output, confident, mean_pose, body, K, batch)
    keep = oks_nms(
        decoded.keypoints_2d / keypoint_normalizer,
        decoded.conf_logit,
        std=std,
        iou_thr=iou_thr,
        conf_thr=conf_thr,
        transitive=transitive,
    )
    return decoded.select(keep)


def _empty_candidates(output: DetectionOutput, index: torch.Tensor) -> Detections:
    def empty(*shape: int) -> torch.Tensor:
        return output.trans.new_zeros(0, *shape)

    return Detections(empty(NUM_BETAS), empty(72), empty(3), empty(27, 3), empty(27, 2), empty(), index)
