"""Image encoder (spec section 2): ConvNeXtV2 stages fused to stride 8, plus intrinsics conditioning."""

from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from torch import nn

from comotion.model.blocks import LayerNorm2d
from comotion.model.config import EncoderConfig

# The rotary conditioning normalises pixels and K by this constant (fixed in the reference).
PIXEL_NORMALIZER = 1024.0


class GlobalResponseNorm(nn.Module):
    """ConvNeXtV2's GRN, ``x + bias + weight * x * N(x)``, evaluated as one pass ``bias + x * (1 + weight * N)``.

    Same parameters (``weight``, ``bias``) and result (to float rounding) as timm's layer, about
    twice as fast: the per-channel factor is formed on the (C,) statistics, not on the full map.
    """

    def __init__(self, dim: int, eps: float = 1e-6, channels_last: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.spatial_dims = (1, 2) if channels_last else (2, 3)
        self.channel_dim = -1 if channels_last else 1
        self.shape = (1, 1, 1, -1) if channels_last else (1, -1, 1, 1)
        self.weight = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # sqrt(sum(x^2)) rather than vector_norm: several times faster over the spatial axes of a
        # channels-last map, equal to float rounding.
        norm = x.square().sum(dim=self.spatial_dims, keepdim=True).sqrt()
        factor = norm / (norm.mean(dim=self.channel_dim, keepdim=True) + self.eps)
        return torch.addcmul(self.bias.view(self.shape), x, 1 + self.weight.view(self.shape) * factor)

    @classmethod
    def replacing(cls, timm_grn: nn.Module) -> GlobalResponseNorm:
        grn = cls(timm_grn.weight.shape[0], timm_grn.eps, channels_last=tuple(timm_grn.spatial_dim) == (1, 2))
        return grn.to(timm_grn.weight.device)


class ImageBackbone(nn.Module):
    """timm ConvNeXtV2 stem + 4 stages; every stage projected to stride 8 and summed.

    ``(B, 3, R, R)`` normalised image -> ``(B, D, R/8, R/8)`` features (before conditioning).
    Stage 0 (stride 4) goes through a 2x2/2 conv; stage 1 (stride 8) a 1x1 conv; stages 2 and 3
    through 1x1 convs to 4D / 16D channels rearranged into space (pixel shuffle).
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        # pretrained=False: all weights come from the CoMotion checkpoint.
        convnext = timm.create_model(config.timm_name, pretrained=False)
        self.stem = convnext.stem
        self.stages = convnext.stages
        for block in (block for stage in self.stages for block in stage.blocks):
            block.mlp.grn = GlobalResponseNorm.replacing(block.mlp.grn)
        dims = [stage.blocks[-1].conv_dw.out_channels for stage in self.stages]
        out = config.output_dim
        self.project_0 = nn.Conv2d(dims[0], out, kernel_size=2, stride=2)
        self.project_1 = nn.Conv2d(dims[1], out, kernel_size=1)
        self.project_2 = nn.Conv2d(dims[2], out * 4, kernel_size=1)
        self.project_3 = nn.Conv2d(dims[3], out * 16, kernel_size=1)
        self.norm_px_feats = LayerNorm2d(out)
        self.dropout = nn.Dropout2d(config.dropout)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.stem(image)
        p0 = self.stages[0](x)
        p1 = self.stages[1](p0)
        p2 = self.stages[2](p1)
        p3 = self.stages[3](p2)
        fused = self.project_0(p0) + self.project_1(p1)
        fused = fused + F.pixel_shuffle(self.project_2(p2), 2)
        fused = fused + F.pixel_shuffle(self.project_3(p3), 4)
        return self.dropout(self.norm_px_feats(fused))


class RotaryIntrinsics(nn.Module):
    """Rotary embedding of pixel and camera coordinates into the first 8R feature channels.

    For every cell centre the angles are ``[p_x w, p_y w, c_x w, c_y w]`` (4R values) with p the
    crop pixel / 1024 and c the camera-frame ray ``(p - c~) / f~`` (K~ = K' / 1024), and
    ``w_k = 1000 / 10000^(k/R)`` (the stored ``inv_freq`` buffer).  Channel pairs (c, c + 4R)
    are rotated by those angles; the remaining channels pass through.  The operation order
    matters at float32 precision because the angles reach hundreds of radians (spec 2.3).
    """

    def __init__(self, rot_embed_dim: int = 8) -> None:
        super().__init__()
        k = torch.arange(rot_embed_dim, dtype=torch.float32)
        self.register_buffer("inv_freq", 1000.0 / 10000.0 ** (k / rot_embed_dim))

    def angles(self, K_crop: torch.Tensor, height: int, width: int, pooling: int) -> torch.Tensor:
        """``(B, 4R, H, W)`` rotation angles of the feature cells for crop intrinsics ``K_crop (B, 2, 3)``."""
        m = max(height, width)
        device = self.inv_freq.device
        cols = (torch.arange(width, device=device, dtype=torch.float32) / m + 0.5 / m) * (m * pooling)
        rows = (torch.arange(height, device=device, dtype=torch.float32) / m + 0.5 / m) * (m * pooling)
        px = (cols / PIXEL_NORMALIZER)[None, None, :]  # (1, 1, W)
        py = (rows / PIXEL_NORMALIZER)[None, :, None]  # (1, H, 1)
        K = K_crop.to(torch.float32) / PIXEL_NORMALIZER
        fx, fy = K[:, 0, 0, None, None], K[:, 1, 1, None, None]
        cx, cy = K[:, 0, 2, None, None], K[:, 1, 2, None, None]
        wx = (px - cx) / fx  # (B, 1, W)
        wy = (py - cy) / fy  # (B, H, 1)
        batch = K.shape[0]
        freq = self.inv_freq[None, :, None, None]
        return torch.cat(
            [
                (px[:, None] * freq).expand(batch, -1, height, width),
                (py[:, None] * freq).expand(batch, -1, height, width),
                (wx[:, None] * freq).expand(batch, -1, height, width),
                (wy[:, None] * freq).expand(batch, -1, height, width),
            ],
            dim=1,
        )

    def forward(self, features: torch.Tensor, K_crop: torch.Tensor, pooling: int = 8) -> torch.Tensor:
        """Condition ``features (B, D, H, W)`` on ``K_crop (B, 2, 3)``; returns the same shape."""
        height, width = features.shape[-2:]
        # Angles reach hundreds of radians: cos/sin in float32 even for reduced-precision features.
        theta = self.angles(K_crop, height, width, pooling)
        n = theta.shape[1]
        cos, sin = torch.cos(theta).to(features.dtype), torch.sin(theta).to(features.dtype)
        a, b, rest = features[:, :n], features[:, n : 2 * n], features[:, 2 * n :]
        return torch.cat([a * cos - b * sin, b * cos + a * sin, rest], dim=1)
