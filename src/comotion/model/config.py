"""Configuration of the CoMotion network: every width, count and switch in one dataclass tree.

Presets (``get_preset(name)``):

* ``"official"``: the released full-size model (ConvNeXtV2-L, D = 256, 365M parameters); loads
  ``comotion_detection_checkpoint.pt`` / ``comotion_refine_checkpoint.pt`` unchanged.
* ``"parity-small"``: the small configuration of the reference parity fixtures
  (ConvNeXtV2-atto, D = 96, E = h = 32, T = 4, H = 32).
* ``"tiny"``: our own small trainable model (ConvNeXtV2-atto at 256x256 input).
* ``"official-fixed"`` / ``"tiny-fixed"``: the same with every network-side quirk fix turned on
  (see :func:`with_fixes` and docs/model.md).

The defaults of the quirk switches reproduce the reference exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from comotion.errors import InputError

# timm model names of the ConvNeXtV2 sizes (the official model uses "large").
BACKBONE_VARIANTS = {
    "atto": "convnextv2_atto",
    "femto": "convnextv2_femto",
    "pico": "convnextv2_pico",
    "nano": "convnextv2_nano",
    "tiny": "convnextv2_tiny",
    "base": "convnextv2_base",
    "large": "convnextv2_large",
    "huge": "convnextv2_huge",
}


@dataclass
class EncoderConfig:
    """Image encoder: ConvNeXtV2 backbone fused to stride 8, plus intrinsics conditioning.

    Attributes:
        variant: ConvNeXtV2 size, one of ``BACKBONE_VARIANTS`` (atto ... huge).
        output_dim: D, channels of the fused stride-8 feature map.
        rot_embed_dim: R, frequencies of the rotary intrinsics conditioning; it rotates the
            first 8R channels, so D must be larger than 8R.
        dropout: Dropout2d after the fusion (training only).
    """

    variant: str = "large"
    output_dim: int = 256
    rot_embed_dim: int = 8
    dropout: float = 0.2

    @property
    def timm_name(self) -> str:
        return BACKBONE_VARIANTS[self.variant]


@dataclass
class DetectionConfig:
    """Detection head.

    Attributes:
        pose_embed_dim: E, the pose embedding each candidate carries into the pose decoder.
        hidden_dim: h; the head's pyramid has 2h channels.
        num_slots: candidate poses per grid cell.
        depth_adj: default depth of level l is ``fx' / (depth_adj * 2**l)`` (fx' in crop pixels).
        pooling: stride of the fused feature map in input pixels.
    """

    pose_embed_dim: int = 256
    hidden_dim: int = 512
    num_slots: int = 4
    depth_adj: float = 128.0
    pooling: int = 8


@dataclass
class UpdateConfig:
    """Pose-update module (the recurrent step that moves every track to the new frame).

    Attributes:
        num_tokens: T, tokens per tracked person.
        num_heads: heads of the image cross-attention.
        token_dim: width of image keys/values and queries.
        hidden_dim: H, token width and recurrent hidden-state size.
        pose_embed_dim: E of the update's pose decoder; must equal the detection's.
        normalizing_factor: pixels are divided by this before position embedding.
        depth_adj: default depth of the translation update is ``fx' / depth_adj``.
        llama_heads: heads of the person/token self-attention layers (fixed at 16 in the
            reference).
        llama_head_dim: width per self-attention head (128 in the reference whatever H is,
            reference quirk Q1).
        offset_readout: ours, off in the official layout: each cross-attention block also
            reads where its image attention points relative to the track's own projected pelvis
            (:func:`~comotion.model.update.local_attention_offsets`) and adds that offset,
            embedded, to the tokens.  The tiny model trained without it did not learn to turn
            the attended cell positions into a position update.
    """

    num_tokens: int = 24
    num_heads: int = 4
    token_dim: int = 256
    hidden_dim: int = 512
    pose_embed_dim: int = 256
    normalizing_factor: float = 1024.0
    depth_adj: float = 128.0
    llama_heads: int = 16
    llama_head_dim: int = 128
    offset_readout: bool = False


@dataclass
class ModelConfig:
    """The whole network plus the network-side reference-quirk switches.

    Attributes:
        input_resolution: side of the square network input in pixels.
        transitive_nms: ``False`` (reference, quirk Q4): a candidate is suppressed by any more
            confident similar candidate, even a suppressed one. ``True``: classic greedy NMS.
        resolution_independent_similarity: ``False`` (reference, quirk Q5): 2-D keypoints are
            compared in original pixels / 1024, so the similarity's scale clamps depend on the
            input resolution. ``True``: divide by the longer image side instead.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    update: UpdateConfig = field(default_factory=UpdateConfig)
    input_resolution: int = 512
    transitive_nms: bool = False
    resolution_independent_similarity: bool = False

    def __post_init__(self) -> None:
        for name, cls in (("encoder", EncoderConfig), ("detection", DetectionConfig), ("update", UpdateConfig)):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, _from_dict(cls, value, name))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first inconsistent field."""
        enc, det, upd = self.encoder, self.detection, self.update
        if enc.variant not in BACKBONE_VARIANTS:
            raise InputError(f"encoder.variant {enc.variant!r} unknown; choose one of {', '.join(BACKBONE_VARIANTS)}")
        if enc.output_dim <= 8 * enc.rot_embed_dim:
            raise InputError(
                f"encoder.output_dim ({enc.output_dim}) must exceed 8 * rot_embed_dim ({8 * enc.rot_embed_dim}),"
                " the channels the intrinsics conditioning rotates"
            )
        if upd.pose_embed_dim != det.pose_embed_dim:
            raise InputError(
                f"update.pose_embed_dim ({upd.pose_embed_dim}) must equal detection.pose_embed_dim ({det.pose_embed_dim})"
            )
        if upd.token_dim % upd.num_heads:
            raise InputError(
                f"update.token_dim ({upd.token_dim}) must be divisible by update.num_heads ({upd.num_heads})"
            )
        stride = det.pooling * 2**4  # the coarsest pyramid level is 1/16 of the stride-pooling feature map
        if self.input_resolution <= 0 or self.input_resolution % stride:
            raise InputError(f"input_resolution ({self.input_resolution}) must be a positive multiple of {stride}")

    @property
    def feature_size(self) -> int:
        """Side of the stride-``pooling`` feature map (64 for 512 input)."""
        return self.input_resolution // self.detection.pooling

    @property
    def num_candidates(self) -> int:
        """Detection candidates per image (1344 for 512 input and 4 slots)."""
        side = self.feature_size // 4
        return self.detection.num_slots * sum((side >> level) ** 2 for level in range(3))

    def keypoint_normalizer(self, image_size: tuple[int, int]) -> float:
        """Divisor that turns original-image pixels into the units 2-D similarities use (Q5)."""
        return float(max(image_size)) if self.resolution_independent_similarity else 1024.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return _from_dict(cls, data, "model config")


def _from_dict(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}")
    return cls(**data)


def with_fixes(config: ModelConfig) -> ModelConfig:
    """A copy of ``config`` with every network-side quirk fix on (Q4, Q5)."""
    return dataclasses.replace(
        config,
        encoder=dataclasses.replace(config.encoder),
        detection=dataclasses.replace(config.detection),
        update=dataclasses.replace(config.update),
        transitive_nms=True,
        resolution_independent_similarity=True,
    )


def _official() -> ModelConfig:
    return ModelConfig()


def _parity_small() -> ModelConfig:
    return ModelConfig(
        encoder=EncoderConfig(variant="atto", output_dim=96, rot_embed_dim=8, dropout=0.0),
        detection=DetectionConfig(pose_embed_dim=32, hidden_dim=32),
        update=UpdateConfig(num_tokens=4, num_heads=4, token_dim=32, hidden_dim=32, pose_embed_dim=32),
    )


def _tiny() -> ModelConfig:
    # 256x256 input: default K gives fx' = 512, so depth_adj 64 keeps the official default depth
    # (8 m at the finest level).  The self-attention keeps 16 heads but with H-sized total width.
    return ModelConfig(
        encoder=EncoderConfig(variant="atto", output_dim=96, rot_embed_dim=8, dropout=0.1),
        detection=DetectionConfig(pose_embed_dim=64, hidden_dim=64, depth_adj=64.0),
        update=UpdateConfig(
            num_tokens=8,
            num_heads=4,
            token_dim=64,
            hidden_dim=128,
            pose_embed_dim=64,
            depth_adj=64.0,
            llama_heads=8,
            llama_head_dim=16,
        ),
        input_resolution=256,
    )


PRESETS = {
    "official": _official,
    "official-fixed": lambda: with_fixes(_official()),
    "parity-small": _parity_small,
    "tiny": _tiny,
    "tiny-fixed": lambda: with_fixes(_tiny()),
}


def get_preset(name: str) -> ModelConfig:
    """A fresh :class:`ModelConfig` for a preset name (see the module docstring)."""
    if name not in PRESETS:
        raise InputError(f"unknown model config preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]()
