"""Pose-update module (spec section 6): moves every tracked person to the current frame.

Each track (SMPL parameters, projected keypoints, hidden state) becomes T tokens; the tokens
cross-attend to the image features, exchange information across people and within a person,
are pooled, update the recurrent hidden state and decode a new pose and translation.
:class:`UpdateNetwork` has exactly the official ``comotion_refine_checkpoint.pt`` layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from comotion.geometry.camera import project_points
from comotion.model.blocks import PoseDecoder, PosEmbed, ResMLP, TransformerLayer, use_onednn_linear
from comotion.model.config import ModelConfig
from comotion.model.detect import NUM_BETAS, POSE_DECODER_SCALE

NUM_KEYPOINTS = 27
SMPL_PARAMS = 10 + 72 + 3
PROJECTION_CLAMP = 5.0  # normalised projected keypoints are clamped to +-5 before embedding


def _full_precision(like: torch.Tensor):
    """Geometry inside the network stays float32 when the layers run under autocast."""
    return torch.autocast(device_type=like.device.type, enabled=False)


class CrossAttentionBlock(nn.Module):
    """Tokens attend to the image, then across people (per token) and within each person."""

    def __init__(self, hidden_dim: int, token_dim: int, num_heads: int, llama_heads: int, llama_head_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.token_to_query = nn.Sequential(
            ResMLP(hidden_dim), nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, token_dim)
        )
        self.post_attention = nn.Sequential(
            ResMLP(token_dim), nn.LayerNorm(token_dim), nn.Linear(token_dim, hidden_dim)
        )
        self.global_attention = nn.ModuleList(
            TransformerLayer(hidden_dim, llama_heads, llama_head_dim) for _ in range(2)
        )
        self.indiv_attention = nn.ModuleList(
            TransformerLayer(hidden_dim, llama_heads, llama_head_dim) for _ in range(2)
        )

    def _query(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, people, num_tokens, _ = tokens.shape
        return self.token_to_query(tokens).reshape(batch, people * num_tokens, self.num_heads, -1).transpose(1, 2)

    def attention_logits(self, tokens: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Scaled query-key products of the image attention, ``(B, heads, N*T, P)`` (person-major
        queries); their softmax over ``P`` is the attention :meth:`forward` applies."""
        query = self._query(tokens)
        return query @ keys.transpose(-1, -2) * query.shape[-1] ** -0.5

    def forward(self, tokens: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``tokens (B, N, T, H)``; ``keys``/``values (B, heads, P, token_dim/heads)`` -> new tokens."""
        batch, people, num_tokens, hidden = tokens.shape
        attended = F.scaled_dot_product_attention(self._query(tokens), keys, values)
        attended = attended.transpose(1, 2).reshape(batch, people, num_tokens, -1)
        tokens = tokens + self.post_attention(attended)

        across = tokens.transpose(1, 2).reshape(batch * num_tokens, people, hidden)
        for layer in self.global_attention:
            across = layer(across)
        tokens = across.reshape(batch, num_tokens, people, hidden).transpose(1, 2)

        within = tokens.reshape(batch * people, num_tokens, hidden)
        for layer in self.indiv_attention:
            within = layer(within)
        return within.reshape(batch, people, num_tokens, hidden)


class TokenPooling(nn.Module):
    """Gated mean over a person's tokens followed by a residual MLP: ``(..., T, H) -> (..., H)``."""

    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(hidden_dim)
        self.token_weight = nn.Linear(hidden_dim, hidden_dim)
        self.token_to_value = nn.Linear(hidden_dim, hidden_dim)
        self.decoder = ResMLP(hidden_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        z = self.ln(tokens)
        pooled = (self.token_to_value(z) * torch.sigmoid(self.token_weight(z))).mean(dim=-2)
        return self.decoder(pooled)


class GRUUpdate(nn.Module):
    """GRU cell over ``[previous hidden, input]`` (previous hidden first, as in the reference)."""

    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        self.fz = nn.Linear(2 * hidden_dim, hidden_dim)
        self.fr = nn.Linear(2 * hidden_dim, hidden_dim)
        self.fq = nn.Linear(2 * hidden_dim, hidden_dim)

    def forward(self, hidden: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        hx = torch.cat([hidden, x], dim=-1)
        z = torch.sigmoid(self.fz(hx))
        r = torch.sigmoid(self.fr(hx))
        q = torch.tanh(self.fq(torch.cat([r * hidden, x], dim=-1)))
        return (1 - z) * hidden + z * q


@dataclass
class UpdateOutput:
    """Raw update of ``N`` tracks (leading dims ``(B, N)``).

    Attributes:
        delta_root_orient: ``(B, N, 3)`` root orientation relative to the mean pose's root.
        delta_body_pose: ``(B, N, 69)`` body pose relative to the mean pose.
        trans: ``(B, N, 3)`` new translation, camera frame, metres.
        hidden: ``(B, N, H)`` new recurrent state.
    """

    delta_root_orient: torch.Tensor
    delta_body_pose: torch.Tensor
    trans: torch.Tensor
    hidden: torch.Tensor


class UpdateNetwork(nn.Module):
    """One recurrent update step for a set of tracks (official refine-checkpoint layout)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        upd = config.update
        feature_dim, H, T = config.encoder.output_dim, upd.hidden_dim, upd.num_tokens
        self.pos_embedding = PosEmbed()
        pe_dim = self.pos_embedding.out_dim
        self.encode_grid = nn.Linear(pe_dim, upd.token_dim)
        self.get_px_key = nn.Linear(feature_dim + upd.token_dim, upd.token_dim)
        self.get_px_value = nn.Linear(feature_dim + upd.token_dim, upd.token_dim)
        self.tokens_to_hidden = nn.Sequential(TokenPooling(H), nn.LayerNorm(H))
        self.feedback_gru_update = GRUUpdate(H)
        self.encode_coords = ResMLP(NUM_KEYPOINTS * (pe_dim + 1), T * H, 2 * H, pre_ln=False)
        self.encode_hidden = ResMLP(H, T * H, 2 * H, pre_ln=False)
        self.encode_smpl = ResMLP(SMPL_PARAMS, T * H, 2 * H, pre_ln=False)
        self.cross_attention = nn.ModuleList(
            CrossAttentionBlock(H, upd.token_dim, upd.num_heads, upd.llama_heads, upd.llama_head_dim) for _ in range(2)
        )
        self.get_px_feedback = TokenPooling(H)
        self.project_hidden = nn.Linear(H, H)
        self.get_pose_update = nn.Sequential(
            ResMLP(H), nn.LayerNorm(H), nn.GELU(), nn.Linear(H, NUM_BETAS + upd.pose_embed_dim + 6)
        )
        self.pose_decoder = PoseDecoder(upd.pose_embed_dim, H)
        use_onednn_linear(self)

    def image_keys_values(self, image_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, D, h, w)`` -> keys, values ``(B, heads, h*w, token_dim/heads)`` (row-major cells)."""
        upd = self.config.update
        batch, _, height, width = image_features.shape
        m = max(height, width)
        device = image_features.device
        # Cell top-left corners, no half-cell offset (quirk Q10).
        cols = torch.arange(width, device=device, dtype=torch.float32) / m * (m * self.config.detection.pooling)
        rows = torch.arange(height, device=device, dtype=torch.float32) / m * (m * self.config.detection.pooling)
        grid = torch.stack(torch.broadcast_tensors(cols[None, :], rows[:, None]), dim=-1) / upd.normalizing_factor
        grid_embedding = self.encode_grid(self.pos_embedding(grid.reshape(-1, 2))).to(image_features.dtype)
        pixels = image_features.flatten(2).transpose(1, 2)  # (B, h*w, D)
        tokens = torch.cat([pixels, grid_embedding.expand(batch, -1, -1)], dim=-1)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, height * width, upd.num_heads, -1).transpose(1, 2)

        return heads(self.get_px_key(tokens)), heads(self.get_px_value(tokens))

    def encode_tokens(
        self,
        K_crop: torch.Tensor,
        betas: torch.Tensor,
        pose: torch.Tensor,
        trans: torch.Tensor,
        keypoints_3d: torch.Tensor,
        hidden: torch.Tensor,
    ) -> torch.Tensor:
        """Track state ``(B, N, ...)`` -> tokens ``(B, N, T, H)``."""
        upd = self.config.update
        with _full_precision(keypoints_3d):  # sin(2^15 x) of projected points needs float32 inputs
            K_norm = (K_crop.float() / upd.normalizing_factor)[:, None]  # (B, 1, 2, 3)
            xy = project_points(keypoints_3d.float(), K_norm).clamp(-PROJECTION_CLAMP, PROJECTION_CLAMP)
            coords = torch.cat([self.pos_embedding(xy).flatten(-2), keypoints_3d[..., 2].float()], dim=-1)
        body = torch.cat([betas, pose, trans], dim=-1)
        tokens = self.encode_coords(coords) + self.encode_hidden(hidden) + self.encode_smpl(body)
        return tokens.reshape(*tokens.shape[:-1], upd.num_tokens, upd.hidden_dim)

    def decode(
        self, tokens: torch.Tensor, hidden: torch.Tensor, trans: torch.Tensor, K_crop: torch.Tensor
    ) -> tuple[UpdateOutput, dict[str, torch.Tensor]]:
        """Final tokens -> :class:`UpdateOutput` and the intermediate vectors (for inspection)."""
        E = self.config.update.pose_embed_dim
        pooled = self.tokens_to_hidden(tokens)
        new_hidden = self.feedback_gru_update(hidden, pooled)
        feedback = self.get_px_feedback(tokens) + self.project_hidden(new_hidden)
        raw = self.get_pose_update(feedback).float()
        pose_embedding = raw[..., NUM_BETAS : NUM_BETAS + E]
        root = raw[..., NUM_BETAS + E : NUM_BETAS + E + 3]
        du, dv, log_depth = raw[..., NUM_BETAS + E + 3 :].unbind(-1)

        with _full_precision(raw):
            K = K_crop[:, None].float()  # (B, 1, 2, 3)
            fx, fy, cx, cy = K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2]
            depth = (fx / self.config.update.depth_adj) / (torch.exp(log_depth) + 0.05)
            uv = project_points(trans[..., None, :].float(), K)[..., 0, :]
            new_trans = torch.stack(
                [(uv[..., 0] + du - cx) / fx * depth, (uv[..., 1] + dv - cy) / fy * depth, depth], dim=-1
            )
        output = UpdateOutput(
            delta_root_orient=root,
            delta_body_pose=self.pose_decoder(pose_embedding) * POSE_DECODER_SCALE,
            trans=new_trans,
            hidden=new_hidden,
        )
        return output, {"hidden_update_input": pooled, "px_feedback": feedback, "raw_update_vector": raw}

    def forward(
        self,
        image_features: torch.Tensor,
        K_crop: torch.Tensor,
        betas: torch.Tensor,
        pose: torch.Tensor,
        trans: torch.Tensor,
        keypoints_3d: torch.Tensor,
        hidden: torch.Tensor,
        keys_values: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> UpdateOutput:
        """One update step.

        Args:
            image_features: ``(B, D, h, w)`` fused features of the current frame.
            K_crop: ``(B, 2, 3)`` intrinsics of the network input.
            betas, pose, trans: ``(B, N, 10)``, ``(B, N, 72)``, ``(B, N, 3)`` current tracks.
            keypoints_3d: ``(B, N, 27, 3)`` their keypoints (camera frame, metres).
            hidden: ``(B, N, H)`` recurrent states.
            keys_values: ``image_keys_values(image_features)`` if already computed for this frame
                (they only depend on the image, so several update calls per frame can share them).
        """
        keys_values = self.image_keys_values(image_features) if keys_values is None else keys_values
        tokens = self.encode_tokens(K_crop, betas, pose, trans, keypoints_3d, hidden)
        return self.update_from_tokens(tokens, hidden, trans, K_crop, keys_values)

    def update_from_tokens(
        self,
        tokens: torch.Tensor,
        hidden: torch.Tensor,
        trans: torch.Tensor,
        K_crop: torch.Tensor,
        keys_values: tuple[torch.Tensor, torch.Tensor],
    ) -> UpdateOutput:
        """The update step after :meth:`encode_tokens` (for callers that also inspect the tokens):
        tokens ``(B, N, T, H)`` through the cross-attention blocks and the decoder."""
        for block in self.cross_attention:
            tokens = block(tokens, *keys_values)
        return self.decode(tokens, hidden, trans, K_crop)[0]
