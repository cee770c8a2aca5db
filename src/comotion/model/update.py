"""Pose-update module (spec section 6): moves every tracked person to the current frame.

Each track (SMPL parameters, projected keypoints, hidden state) becomes T tokens; the tokens
cross-attend to the image features, exchange information across people and within a person,
are pooled, update the recurrent hidden state and decode a new pose and translation.
:class:`UpdateNetwork` has exactly the official ``comotion_refine_checkpoint.pt`` layout.
"""

from __future__ import annotations

import math
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
# Offset readout: image cells count with a Gaussian window of this many person heights around
# the track's pelvis, so people elsewhere in the frame do not pull the offset.
OFFSET_WINDOW = 0.5


def _full_precision(like: torch.Tensor):
    """Geometry inside the network stays float32 when the layers run under autocast."""
    return torch.autocast(device_type=like.device.type, enabled=False)


@dataclass
class TrackAnchors:
    """Where each track is in the network input, in pixels / ``normalizing_factor``.

    Attributes:
        center: ``(B, N, 2)`` projected pelvis.
        height: ``(B, N)`` extent of the projected keypoints (the larger of width and height).
    """

    center: torch.Tensor
    height: torch.Tensor


def local_attention_offsets(attention: torch.Tensor, cells: torch.Tensor, anchors: TrackAnchors) -> torch.Tensor:
    """Where each query's image attention points, relative to its track, in person heights.

    The attention weights are multiplied by a Gaussian window (``OFFSET_WINDOW`` heights) around
    the track's pelvis and renormalised; the offset is their mean cell position minus the pelvis,
    divided by the track's height.

    Args:
        attention: ``(B, heads, N, T, P)`` softmax weights of each track's ``T`` tokens over
            ``P`` cells.
        cells: ``(P, 2)`` cell positions, same units as the anchors.
        anchors: the ``N`` tracks' centers and heights.

    Returns:
        ``(B, heads, N, T, 2)``.
    """
    relative = (cells[None, None] - anchors.center[:, :, None, :]) / anchors.height[..., None, None]  # (B, N, P, 2)
    window = torch.exp(-0.5 * relative.square().sum(-1) / OFFSET_WINDOW**2)  # (B, N, P)
    weights = attention * window[:, None, :, None, :]
    total = weights.sum(-1, keepdim=True).clamp(min=1e-12)
    return torch.einsum("bhntp,bnpc->bhntc", weights, relative) / total


class CrossAttentionBlock(nn.Module):
    """Tokens attend to the image, then across people (per token) and within each person.

    With ``offset_readout`` the block also embeds :func:`local_attention_offsets` of its image
    attention into the tokens (a zero-initialised linear layer, so a model grown from one without
    it starts out computing the same)."""

    def __init__(
        self, hidden_dim: int, token_dim: int, num_heads: int, llama_heads: int, llama_head_dim: int, offset_readout: bool = False
    ) -> None:
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
        self.embed_offsets = None
        if offset_readout:
            self.embed_offsets = nn.Linear(2 * num_heads, hidden_dim)
            nn.init.zeros_(self.embed_offsets.weight)
            nn.init.zeros_(self.embed_offsets.bias)

    def _query(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, people, num_tokens, _ = tokens.shape
        return self.token_to_query(tokens).reshape(batch, people * num_tokens, self.num_heads, -1).transpose(1, 2)

    def attention_logits(self, tokens: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Scaled query-key products of the image attention, ``(B, heads, N*T, P)`` (person-major
        queries); their softmax over ``P`` is the attention :meth:`forward` applies."""
        query = self._query(tokens)
        return query @ keys.transpose(-1, -2) * query.shape[-1] ** -0.5

    def forward(
        self,
        tokens: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        cells: torch.Tensor | None = None,
        anchors: TrackAnchors | None = None,
    ) -> torch.Tensor:
        """``tokens (B, N, T, H)``; ``keys``/``values (B, heads, P, token_dim/heads)`` -> new tokens.
        ``cells (P, 2)`` and ``anchors`` are needed with ``offset_readout`` only."""
        batch, people, num_tokens, hidden = tokens.shape
        if self.embed_offsets is None:
            attended = F.scaled_dot_product_attention(self._query(tokens), keys, values)
        else:
            attention = torch.softmax(self.attention_logits(tokens, keys), dim=-1)
            attended = attention @ values
            with _full_precision(attention):
                offsets = local_attention_offsets(attention.float().unflatten(2, (people, num_tokens)), cells, anchors)
            offsets = offsets.permute(0, 2, 3, 1, 4).reshape(batch, people, num_tokens, -1)
        attended = attended.transpose(1, 2).reshape(batch, people, num_tokens, -1)
        tokens = tokens + self.post_attention(attended)
        if self.embed_offsets is not None:
            tokens = tokens + self.embed_offsets(offsets.to(tokens.dtype))

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
            CrossAttentionBlock(H, upd.token_dim, upd.num_heads, upd.llama_heads, upd.llama_head_dim, upd.offset_readout)
            for _ in range(2)
        )
        self.get_px_feedback = TokenPooling(H)
        self.project_hidden = nn.Linear(H, H)
        self.get_pose_update = nn.Sequential(
            ResMLP(H), nn.LayerNorm(H), nn.GELU(), nn.Linear(H, NUM_BETAS + upd.pose_embed_dim + 6)
        )
        self.pose_decoder = PoseDecoder(upd.pose_embed_dim, H)
        use_onednn_linear(self)

    def cell_positions(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """Positions of the ``h x w`` feature cells, ``(h*w, 2)`` row-major, in network-input
        pixels / ``normalizing_factor`` (the units of the tracks' position embedding)."""
        m = max(height, width)
        # Cell top-left corners, no half-cell offset (quirk Q10).
        cols = torch.arange(width, device=device, dtype=torch.float32) / m * (m * self.config.detection.pooling)
        rows = torch.arange(height, device=device, dtype=torch.float32) / m * (m * self.config.detection.pooling)
        grid = torch.stack(torch.broadcast_tensors(cols[None, :], rows[:, None]), dim=-1)
        return grid.reshape(-1, 2) / self.config.update.normalizing_factor

    def track_anchors(self, K_crop: torch.Tensor, keypoints_3d: torch.Tensor) -> TrackAnchors:
        """``K_crop (B, 2, 3)``, ``keypoints_3d (B, N, 27, 3)`` -> the tracks' :class:`TrackAnchors`."""
        with _full_precision(keypoints_3d):
            K_norm = (K_crop.float() / self.config.update.normalizing_factor)[:, None]
            xy = project_points(keypoints_3d.float(), K_norm).clamp(-PROJECTION_CLAMP, PROJECTION_CLAMP)
            extent = (xy.amax(-2) - xy.amin(-2)).amax(-1)
            # At least one feature cell: a track squeezed to a point still gets a window.
            return TrackAnchors(center=xy[..., 0, :], height=extent.clamp(min=self.config.detection.pooling / self.config.update.normalizing_factor))

    def image_keys_values(self, image_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, D, h, w)`` -> keys, values ``(B, heads, h*w, token_dim/heads)`` (row-major cells)."""
        upd = self.config.update
        batch, _, height, width = image_features.shape
        grid = self.cell_positions(height, width, image_features.device)
        grid_embedding = self.encode_grid(self.pos_embedding(grid)).to(image_features.dtype)
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
        return self.update_from_tokens(tokens, hidden, trans, keypoints_3d, K_crop, keys_values)

    def update_from_tokens(
        self,
        tokens: torch.Tensor,
        hidden: torch.Tensor,
        trans: torch.Tensor,
        keypoints_3d: torch.Tensor,
        K_crop: torch.Tensor,
        keys_values: tuple[torch.Tensor, torch.Tensor],
    ) -> UpdateOutput:
        """The update step after :meth:`encode_tokens` (for callers that also inspect the tokens):
        tokens ``(B, N, T, H)`` through the cross-attention blocks and the decoder."""
        cells = anchors = None
        if self.config.update.offset_readout:
            side = math.isqrt(keys_values[0].shape[-2])
            if side * side != keys_values[0].shape[-2]:
                raise ValueError("the offset readout needs a square feature map (the network input is square)")
            cells = self.cell_positions(side, side, tokens.device)
            anchors = self.track_anchors(K_crop, keypoints_3d)
        for block in self.cross_attention:
            tokens = block(tokens, *keys_values, cells, anchors)
        return self.decode(tokens, hidden, trans, K_crop)[0]
