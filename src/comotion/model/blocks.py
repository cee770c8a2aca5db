"""Small building blocks shared by the detection and update modules.

Attribute names follow the official state-dict layout (``ln0``, ``l1``, ``ln1``, ``l2``;
``self_attn.q_proj``; ``mlp.gate_proj`` ...), so the official checkpoints load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# oneDNN's fused linear: 2-2.6x the speed of the default BLAS path for float32 on CPUs where
# MKL takes a generic code path (measured on AMD EPYC; see docs/model.md), same float32 math.
_ONEDNN_LINEAR = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None


class Linear(nn.Linear):
    """``nn.Linear`` whose CPU float32 inference (no autograd, no autocast) runs through oneDNN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            _ONEDNN_LINEAR is not None
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and self.weight.dtype == torch.float32
            and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu")
            and not torch.compiler.is_compiling()  # inductor picks its own kernels
        ):
            return _ONEDNN_LINEAR(x.contiguous(), self.weight, self.bias, "none", [], "")
        return super().forward(x)


def use_onednn_linear(module: nn.Module) -> nn.Module:
    """Switch every plain ``nn.Linear`` inside ``module`` (timm's too) to :class:`Linear` in place.

    Parameters and state-dict keys are unchanged; only the inference kernel differs.
    """
    for child in module.modules():
        if type(child) is nn.Linear:
            child.__class__ = Linear
    return module


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (eps 1e-6, as timm's ``LayerNorm2d``)."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ResMLP(nn.Module):
    """Two-layer MLP ``[LN] -> Linear -> LN -> GELU -> Linear``, residual when in == out.

    Args:
        dim: input width.
        out_dim: output width (default ``dim``; the residual is only added when equal).
        hidden_dim: inner width (default ``2 * dim``).
        pre_ln: apply a LayerNorm (``ln0``) to the input first.
    """

    def __init__(
        self, dim: int, out_dim: int | None = None, hidden_dim: int | None = None, pre_ln: bool = True
    ) -> None:
        super().__init__()
        out_dim = dim if out_dim is None else out_dim
        hidden_dim = 2 * dim if hidden_dim is None else hidden_dim
        self.ln0 = nn.LayerNorm(dim) if pre_ln else None
        self.l1 = nn.Linear(dim, hidden_dim)
        self.ln1 = nn.LayerNorm(hidden_dim)
        self.l2 = nn.Linear(hidden_dim, out_dim)
        self.residual = out_dim == dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.ln0 is None else self.ln0(x)
        y = self.l2(F.gelu(self.ln1(self.l1(y))))
        return x + y if self.residual else y


class PosEmbed(nn.Module):
    """Sinusoidal embedding of 2-D points: ``[x, y, sin(x 2^k)..., sin(y 2^k)...]``, k = 0..15.

    ``(..., 2) -> (..., 2 + 2 * num_bands)``.  The frequencies are a persistent buffer
    (``freq_bands``) because the official checkpoints store them.
    """

    def __init__(self, num_bands: int = 16) -> None:
        super().__init__()
        self.register_buffer("freq_bands", 2.0 ** torch.arange(num_bands, dtype=torch.float32))

    @property
    def out_dim(self) -> int:
        return 2 + 2 * self.freq_bands.numel()

    def forward(self, xy: torch.Tensor) -> torch.Tensor:
        angles = xy[..., :, None] * self.freq_bands  # (..., 2, bands), coordinate-major
        return torch.cat([xy, torch.sin(angles).flatten(-2)], dim=-1)


class RMSNorm(nn.Module):
    """``w * x / sqrt(mean(x^2) + eps)`` with statistics in float32 (Llama)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


class SelfAttention(nn.Module):
    """Bidirectional multi-head self-attention without position encoding or bias terms."""

    def __init__(self, dim: int, num_heads: int, head_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        inner = num_heads * head_dim
        self.q_proj = nn.Linear(dim, inner, bias=False)
        self.k_proj = nn.Linear(dim, inner, bias=False)
        self.v_proj = nn.Linear(dim, inner, bias=False)
        self.o_proj = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (S, L, dim)``: S independent sequences of length L."""
        seqs, length, dim = x.shape
        # Project as one (S*L, dim) matrix: a 3-D input can make reduced-precision matmuls
        # broadcast the weight per sequence.
        tokens = x.reshape(seqs * length, dim)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(seqs, length, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q_proj(tokens)), heads(self.k_proj(tokens)), heads(self.v_proj(tokens))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(seqs * length, -1)
        return self.o_proj(out).view(seqs, length, dim)


class GatedMLP(nn.Module):
    """``down(SiLU(gate(x)) * up(x))`` without biases (Llama MLP)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden_dim, bias=False)
        self.up_proj = nn.Linear(dim, hidden_dim, bias=False)
        self.down_proj = nn.Linear(hidden_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class TransformerLayer(nn.Module):
    """Llama-style pre-norm decoder layer as the reference runs it: no rotary, no mask.

    Args:
        dim: token width H.
        num_heads: attention heads (16 in the reference).
        head_dim: width per head (128 in the reference, independent of H: quirk Q1).
        mlp_dim: gated-MLP inner width (2H in the reference).
    """

    def __init__(self, dim: int, num_heads: int = 16, head_dim: int = 128, mlp_dim: int | None = None) -> None:
        super().__init__()
        self.self_attn = SelfAttention(dim, num_heads, head_dim)
        self.mlp = GatedMLP(dim, 2 * dim if mlp_dim is None else mlp_dim)
        self.input_layernorm = RMSNorm(dim)
        self.post_attention_layernorm = RMSNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (S, L, dim)`` -> same shape."""
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x).flatten(0, -2)).view(x.shape)


class PoseDecoder(nn.Sequential):
    """Pose embedding ``(..., E)`` -> body-pose axis-angle delta ``(..., 69)`` (before the 0.3 scale).

    ``LN(E) -> Linear(E, h) -> ResMLP(h) -> LN(h) -> GELU -> Linear(h, 69)``; indices match the
    official ``pose_decoder.{0,1,2,3,5}`` keys.
    """

    def __init__(self, embed_dim: int, hidden_dim: int, num_outputs: int = 69) -> None:
        super().__init__(
            nn.LayerNorm(embed_dim),
            nn.Linear(embed_dim, hidden_dim),
            ResMLP(hidden_dim),
            nn.LayerNorm(hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, num_outputs),
        )
