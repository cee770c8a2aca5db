"""The three training stages of the paper's curriculum (section 4.2) as loss-computing modules.

* :class:`DetectionObjective` (stage 1): encoder + detection head on single images.  All
  candidates are decoded, matched to the annotated people (:mod:`~comotion.train.matching`),
  the matched ones get the pose losses, the confidences a BCE loss, and an auxiliary 1x1-conv
  head on the fused stride-8 features (:class:`KeypointHeatmapHead`, training only) a keypoint
  heatmap loss.
* :class:`UpdateObjective` (stages 2 and 3): encoder and detector frozen; on the first frame of a
  clip the detector's candidates are matched to the annotated people, the matched candidates
  become tracks with zero hidden state, are refined once on that frame (as track initialisation
  does) and then unrolled through the clip by the update module, with the pose losses at every
  step.  Stage 3 runs the same on longer clips with gradient checkpointing per step.

Every objective returns per-term losses averaged over the samples of the (local) batch, so
data-parallel training over equal local batches computes the same gradient as one process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.utils.checkpoint
from torch import nn

from comotion.geometry.camera import boxes_from_points, project_points
from comotion.geometry.rotations import apply_pose_delta
from comotion.io.mot import BOX_VERTEX_STRIDE
from comotion.model.detect import POSE_DECODER_SCALE, DetectionOutput
from comotion.model.preprocess import IMAGENET_MEAN, IMAGENET_STD
from comotion.train import losses
from comotion.train.data import NUM_KEYPOINTS, Sample
from comotion.train.matching import match_candidates

# Keypoints are projected for the reprojection loss with depths clamped at 10 cm: nobody stands
# closer to a camera, and the 1/z^2 gradient of points near the image plane would swamp the rest.
LOSS_MIN_DEPTH = 0.1
# "depth", "box" and "attention" (off unless weighted) are beyond the paper, see ObjectiveConfig.
LOSS_NAMES = ("reprojection", "joints_3d", "joint_angles", "betas", "depth", "box", "confidence", "heatmap")
# Betas are never updated.
UPDATE_LOSS_NAMES = ("reprojection", "joints_3d", "joint_angles", "depth", "attention")


@dataclass
class ObjectiveConfig:
    """Loss weights and the knobs of matching and sampling.

    Attributes:
        weights: per-term loss weights (keys of ``LOSS_NAMES`` and ``UPDATE_LOSS_NAMES``); the
            total is their weighted sum; a term without a weight counts 0.  ``depth``
            (:func:`~comotion.train.losses.root_depth_loss`, log depth of the root) is beyond
            the paper, for data with 3-D ground truth: the tiny model's detector placed small
            people at wrong depths, so their boxes had the wrong size.  ``box``
            (:func:`~comotion.train.losses.box_loss`, stage 1, data with 3-D ground truth) is
            beyond the paper too: the L1 error of the projected mesh box (every
            ``BOX_VERTEX_STRIDE``-th vertex, as the tracker draws boxes) per person height.
        match_alpha: exponent of the confidence factor in the matching score.
        oks_std: OKS kernel width for matching.
        negatives_per_positive: unmatched candidates drawn as BCE negatives per matched one.
        min_negatives: at least this many negatives per image (also when nobody is annotated).
        heatmap_sigma: Gaussian width of the heatmap targets, in feature cells.
        max_tracks: stage 2/3: at most this many matched people are unrolled per clip.
        min_track_oks: stage 2/3: matches with a lower OKS are not unrolled (nothing to refine).
        checkpoint_unroll: recompute each update step in the backward pass (stage 3).
        detach_pose_state: stage 2/3: no gradient flows back in time through the pose,
            translation and keypoints a step hands to the next, only through the hidden state.
            The update module embeds keypoint positions with frequencies up to 2^15, so gradients
            through them grow by orders of magnitude per step (norms ~1e7 over 8 steps).
        train_feature_fusion: stage 2/3: also train the detection module's pyramid fusion
            (``fuse_features``), whose output only the update module reads; the encoder and the
            detection head stay frozen.  Off = the paper (whole detection module frozen).
        track_jitter_px: stage 2/3: the initial tracks' roots are moved by Gaussian noise of
            this standard deviation in the image plane (network-input pixels) before the
            unroll.  Beyond the paper: a detection on the clip's first frame is already close
            to the truth, so without noise a module that ignores the image and keeps every
            track where it was loses little; noise makes finding the person in the image pay.
        track_jitter_depth: stage 2/3: standard deviation of the same noise on log depth.
        attention_sigma: stage 2/3, with an ``attention`` weight: width (feature cells) of the
            Gaussians at the person's keypoints that make the target of the attention loss.
            Beyond the paper: the ``attention`` term pulls the image attention of the first
            cross-attention block's first head, for every token of a track, to where its person
            is in the attended frame (:func:`~comotion.train.losses.attention_localization_loss`).
            From a random start the attention is spread over all cells and its gradient is
            weak; trained on the pose losses alone on a CPU budget, the tiny model learned to
            ignore the image.
    """

    weights: dict[str, float] = field(
        default_factory=lambda: {"reprojection": 1.0, "joints_3d": 1.0, "joint_angles": 0.2, "betas": 0.1, "confidence": 1.0, "heatmap": 1.0}
    )
    match_alpha: float = 0.5
    oks_std: float = 0.08
    negatives_per_positive: int = 3
    min_negatives: int = 16
    heatmap_sigma: float = 1.0
    max_tracks: int = 8
    min_track_oks: float = 0.1
    checkpoint_unroll: bool = False
    detach_pose_state: bool = True
    train_feature_fusion: bool = False
    track_jitter_px: float = 0.0
    track_jitter_depth: float = 0.0
    attention_sigma: float = 1.0


class KeypointHeatmapHead(nn.Module):
    """Auxiliary training head: fused features ``(B, D, h, w)`` -> 27 keypoint heatmaps
    ``(B, 27, h, w)`` (a 1x1 convolution).  Not part of the released model."""

    def __init__(self, feature_dim: int, num_keypoints: int = NUM_KEYPOINTS) -> None:
        super().__init__()
        self.proj = nn.Conv2d(feature_dim, num_keypoints, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)


def jitter_translation(trans: torch.Tensor, K: torch.Tensor, std_px: float, std_log_depth: float, generator: torch.Generator) -> torch.Tensor:
    """Moves roots ``trans (M, 3)`` (camera frame, metres) by Gaussian noise: the projected root
    by ``std_px`` pixels of ``K (2, 3)`` per axis, the depth by a factor ``exp(N(0, std_log_depth))``."""
    noise = torch.randn(trans.shape[0], 3, generator=generator).to(trans)
    uv = project_points(trans[:, None], K)[:, 0] + noise[:, :2] * std_px
    depth = trans[:, 2] * torch.exp(noise[:, 2] * std_log_depth)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    return torch.stack([(uv[:, 0] - cx) / fx * depth, (uv[:, 1] - cy) / fy * depth, depth], dim=-1)


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """``(..., 3, H, W)`` RGB in [0, 1] -> ImageNet-normalised network input."""
    mean = images.new_tensor(IMAGENET_MEAN)[:, None, None]
    std = images.new_tensor(IMAGENET_STD)[:, None, None]
    return (images - mean) / std


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _mean_over_samples(per_sample: list[dict[str, torch.Tensor]], names: tuple[str, ...], reference: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-term mean over the samples; a sample without a term counts as 0."""
    return {name: torch.stack([s.get(name, reference.new_zeros(())) for s in per_sample]).mean() for name in names}


def weighted_total(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """``sum_k weights[k] * terms[k]`` over the terms with a weight."""
    return sum(weights.get(name, 0.0) * value for name, value in terms.items())


def pose_losses(
    body, K: torch.Tensor, betas: torch.Tensor, pose: torch.Tensor, trans: torch.Tensor, target: Sample, index: tuple, image_size: float
) -> dict[str, torch.Tensor]:
    """Pose losses of ``M`` predicted people against the targets ``target.<field>[index]``.

    Args:
        body: body model (keypoints of the predictions).
        K: ``(2, 3)`` network-input intrinsics.
        betas, pose, trans: ``(M, 10)``, ``(M, 72)``, ``(M, 3)`` predictions.
        target: batched :class:`Sample`; ``index`` selects ``M`` people from its per-person
            fields (e.g. ``(b, t, persons)``).
    """
    if betas.shape[0] == 0:  # nobody to match in this image
        zero = (betas.sum() + pose.sum() + trans.sum()) * 0.0
        return {name: zero for name in ("reprojection", "joints_3d", "joint_angles", "betas", "depth", "box")}
    predicted = body(betas, pose, trans, vertices=BOX_VERTEX_STRIDE)
    keypoints_3d = predicted.keypoints
    keypoints_2d = project_points(keypoints_3d, K, min_depth=LOSS_MIN_DEPTH)
    has_3d = target.has_3d[index] & target.valid[index]
    with torch.no_grad():
        true_vertices = body(target.betas[index], target.pose[index], target.trans[index], vertices=BOX_VERTEX_STRIDE).vertices
    return {
        "reprojection": losses.reprojection_loss(
            keypoints_2d, target.keypoints_2d[index], target.keypoints_2d_valid[index] & target.valid[index][:, None], image_size
        ),
        "joints_3d": losses.root_relative_joints_loss(keypoints_3d, target.keypoints_3d[index], has_3d),
        "joint_angles": losses.joint_angle_loss(pose, target.pose[index], has_3d),
        "depth": losses.root_depth_loss(keypoints_3d, target.keypoints_3d[index], has_3d, LOSS_MIN_DEPTH),
        "betas": losses.betas_loss(betas, target.betas[index], target.has_betas[index] & target.valid[index]),
        "box": losses.box_loss(_mesh_box(predicted.vertices, K), _mesh_box(true_vertices, K), has_3d, image_size),
    }


def _mesh_box(vertices: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Tight boxes ``(M, 2, 2)`` pixels around camera-frame ``vertices (M, V, 3)`` projected with ``K (2, 3)``."""
    return boxes_from_points(project_points(vertices, K, min_depth=LOSS_MIN_DEPTH))


class DetectionObjective(nn.Module):
    """Stage 1: losses of the detection network on a batch of single images.

    Args:
        model: a :class:`comotion.model.CoMotion` (its detection module is trained).
        heatmap_head: the auxiliary head on the fused features.
        config: loss weights and matching settings.
    """

    def __init__(self, model, heatmap_head: KeypointHeatmapHead, config: ObjectiveConfig) -> None:
        super().__init__()
        self.detection = model.detection_module
        self.heatmap_head = heatmap_head
        self.body = model.body
        self.register_buffer("mean_pose", model.mean_pose.clone(), persistent=False)
        self.config = config
        self.resolution = model.config.input_resolution
        self.pooling = model.config.detection.pooling

    def forward(self, batch: Sample, seeds: torch.Tensor) -> dict[str, torch.Tensor]:
        """``batch`` with ``T = 1``; ``seeds (B,)`` drive the negative sampling.  Returns the
        per-term losses (means over the batch) and ``"total"``."""
        cfg = self.config
        images, K = normalize_images(batch.images[:, 0]), batch.K[:, 0]
        output = self.detection(images, K)
        heatmaps = self.heatmap_head(output.image_features)
        delta = torch.cat([output.delta_root_orient, output.delta_body_pose], dim=-1)
        # Poses are composed with gradients for the matched candidates only: composing near the
        # axis-angle branch cut can have infinite local derivatives, and a zero upstream
        # gradient times an infinite one is NaN, so unmatched candidates must stay out of the graph.
        with torch.no_grad():
            all_2d = project_points(self.body.keypoints(output.betas, apply_pose_delta(self.mean_pose, delta), output.trans), K[:, None])
        num_candidates = output.conf.shape[1]
        per_sample = []
        for b in range(images.shape[0]):
            persons = batch.detectable[b, 0].nonzero()[:, 0]
            match = match_candidates(
                all_2d[b],
                output.conf[b],
                batch.keypoints_2d[b, 0, persons],
                batch.keypoints_2d_valid[b, 0, persons],
                normalizer=2.0 * self.resolution,
                std=cfg.oks_std,
                alpha=cfg.match_alpha,
            )
            cand, matched = match.candidate, persons[match.person]
            pose = apply_pose_delta(self.mean_pose, delta[b, cand]) if len(cand) else delta[b, cand]
            terms = pose_losses(self.body, K[b], output.betas[b, cand], pose, output.trans[b, cand], batch, (b, 0, matched), self.resolution)
            count = max(cfg.negatives_per_positive * len(cand), cfg.min_negatives)
            negatives = losses.sample_negatives(num_candidates, cand, count, _generator(seeds[b]))
            terms["confidence"] = losses.confidence_loss(output.conf[b], cand, negatives)
            annotated = batch.valid[b, 0]
            target = losses.keypoint_heatmaps(
                batch.keypoints_2d[b, 0, annotated], batch.keypoints_2d_valid[b, 0, annotated], heatmaps.shape[-1], self.pooling, cfg.heatmap_sigma
            )
            terms["heatmap"] = losses.heatmap_loss(heatmaps[b], target)
            per_sample.append(terms)
        terms = _mean_over_samples(per_sample, LOSS_NAMES, heatmaps)
        terms["total"] = weighted_total(terms, cfg.weights)
        return terms


class UpdateObjective(nn.Module):
    """Stages 2 and 3: losses of the update module unrolled over clips.

    Args:
        model: a :class:`comotion.model.CoMotion`; its detection module is frozen (eval mode,
            no gradients), its update module is trained.
        config: loss weights, matching and unroll settings.
    """

    def __init__(self, model, config: ObjectiveConfig) -> None:
        super().__init__()
        self.detection = model.detection_module
        self.update = model.update_module
        self.body = model.body
        self.register_buffer("mean_pose", model.mean_pose.clone(), persistent=False)
        self.config = config
        self.resolution = model.config.input_resolution
        self.hidden_dim = model.config.update.hidden_dim
        self.detection.requires_grad_(False)
        if config.train_feature_fusion:
            self.detection.fuse_features.requires_grad_(True)

    def train(self, mode: bool = True) -> UpdateObjective:
        super().train(mode)
        self.detection.eval()  # frozen: no dropout either
        return self

    def _detect(self, images: torch.Tensor, K: torch.Tensor):
        """The frozen detector's output (``DetectionNetwork.forward`` step by step); with
        ``train_feature_fusion`` the fused features carry gradients into the fusion layers."""
        det = self.detection
        with torch.no_grad():
            _, features = det.encode(images, K)
            pyramid, levels = det.detection_head(features)
            fields = det.decode_levels(levels, K)
            delta_body_pose = det.pose_decoder(fields["pose_embedding"]) * POSE_DECODER_SCALE
        with torch.set_grad_enabled(self.config.train_feature_fusion and torch.is_grad_enabled()):
            image_features = det.fuse_features(features, pyramid)
        return DetectionOutput(image_features=image_features, delta_body_pose=delta_body_pose, **fields)

    def _step(self, features, K, betas, pose, trans, keypoints_3d, hidden, target_2d, target_valid):
        """One update of ``M`` tracks on one frame; also returns the attention loss against the
        people's keypoints ``target_2d (M, 27, 2)`` there (0 unless weighted)."""
        if self.config.detach_pose_state:
            pose, trans, keypoints_3d = pose.detach(), trans.detach(), keypoints_3d.detach()
        keys_values = self.update.image_keys_values(features[None])
        tokens = self.update.encode_tokens(K[None], betas[None], pose[None], trans[None], keypoints_3d[None], hidden[None])
        raw = self.update.update_from_tokens(tokens, hidden[None], trans[None], keypoints_3d[None], K[None], keys_values)
        attention = features.new_zeros(())
        if self.config.weights.get("attention", 0.0) > 0:
            logits = self.update.cross_attention[0].attention_logits(tokens, keys_values[0])[0, 0]  # (M*T, cells)
            size = features.shape[-1]
            attention = losses.attention_localization_loss(
                logits.unflatten(0, (betas.shape[0], -1)), target_2d, target_valid, size, self.resolution // size, self.config.attention_sigma
            )
        new_pose = apply_pose_delta(self.mean_pose, torch.cat([raw.delta_root_orient[0], raw.delta_body_pose[0]], dim=-1))
        new_trans = raw.trans[0]
        return new_pose, new_trans, self.body.keypoints(betas, new_pose, new_trans), raw.hidden[0], attention

    def initial_tracks(self, output, K: torch.Tensor, batch: Sample, b: int, frame: int, seed: int):
        """Match the candidates of image ``frame`` (flat detection batch index) to the people
        detectable in clip ``b``'s first frame -> ``(candidate index, person slot)``."""
        cfg = self.config
        with torch.no_grad():
            pose = apply_pose_delta(self.mean_pose, torch.cat([output.delta_root_orient[frame], output.delta_body_pose[frame]], dim=-1))
            keypoints_2d = project_points(self.body.keypoints(output.betas[frame], pose, output.trans[frame]), K)
        persons = batch.detectable[b, 0].nonzero()[:, 0]
        match = match_candidates(
            keypoints_2d, output.conf[frame], batch.keypoints_2d[b, 0, persons], batch.keypoints_2d_valid[b, 0, persons],
            normalizer=2.0 * self.resolution, std=cfg.oks_std, alpha=cfg.match_alpha,
        )  # fmt: skip
        good = match.oks[match.candidate, match.person] >= cfg.min_track_oks
        cand, slots = match.candidate[good], persons[match.person[good]]
        if len(cand) > cfg.max_tracks:
            keep = torch.randperm(len(cand), generator=_generator(seed))[: cfg.max_tracks].sort().values
            cand, slots = cand[keep], slots[keep]
        return cand, slots, pose[cand]

    def forward(self, batch: Sample, seeds: torch.Tensor) -> dict[str, torch.Tensor]:
        """``batch`` of ``B`` clips of ``T`` frames; ``seeds (B,)`` pick the unrolled subset."""
        B, T = batch.images.shape[:2]
        output = self._detect(normalize_images(batch.images.flatten(0, 1)), batch.K.flatten(0, 1))
        features = output.image_features.unflatten(0, (B, T))
        per_sample = []
        for b in range(B):
            K = batch.K[b]
            cand, slots, pose = self.initial_tracks(output, K[0], batch, b, b * T, int(seeds[b]))
            if len(cand) == 0:
                continue
            betas, trans = output.betas[b * T, cand], output.trans[b * T, cand]
            if self.config.track_jitter_px > 0 or self.config.track_jitter_depth > 0:
                # A different stream from the track subset's (same seed would correlate them).
                jitter = _generator(int(seeds[b]) + 1_000_003)
                trans = jitter_translation(trans, K[0], self.config.track_jitter_px, self.config.track_jitter_depth, jitter)
            keypoints_3d = self.body.keypoints(betas, pose, trans)
            hidden = betas.new_zeros(len(cand), self.hidden_dim)
            steps = []
            for t in range(T):
                index = (b, t, slots)
                target_2d, target_valid = batch.keypoints_2d[index], batch.keypoints_2d_valid[index] & batch.valid[index][:, None]
                inputs = (features[b, t], K[t], betas, pose, trans, keypoints_3d, hidden, target_2d, target_valid)
                if self.config.checkpoint_unroll:
                    pose, trans, keypoints_3d, hidden, attention = torch.utils.checkpoint.checkpoint(self._step, *inputs, use_reentrant=False)
                else:
                    pose, trans, keypoints_3d, hidden, attention = self._step(*inputs)
                steps.append({**self._frame_losses(K[t], betas, pose, trans, keypoints_3d, batch, index), "attention": attention})
            per_sample.append({name: torch.stack([s[name] for s in steps]).mean() for name in steps[0]})
        reference = next(self.update.parameters())
        # Clips where nobody was matched contribute zero; the zero-weight parameter term keeps
        # the backward pass (and the data-parallel gradient exchange) running on every rank.
        per_sample += [{} for _ in range(B - len(per_sample))]
        terms = _mean_over_samples(per_sample, UPDATE_LOSS_NAMES, reference)
        terms["total"] = weighted_total(terms, self.config.weights) + 0.0 * sum(p.sum() for p in self.update.parameters())
        return terms

    def _frame_losses(self, K, betas, pose, trans, keypoints_3d, batch: Sample, index: tuple) -> dict[str, torch.Tensor]:
        keypoints_2d = project_points(keypoints_3d, K, min_depth=LOSS_MIN_DEPTH)
        valid = batch.valid[index]
        has_3d = batch.has_3d[index] & valid
        return {
            "reprojection": losses.reprojection_loss(
                keypoints_2d, batch.keypoints_2d[index], batch.keypoints_2d_valid[index] & valid[:, None], self.resolution
            ),
            "joints_3d": losses.root_relative_joints_loss(keypoints_3d, batch.keypoints_3d[index], has_3d),
            "joint_angles": losses.joint_angle_loss(pose, batch.pose[index], has_3d),
            "depth": losses.root_depth_loss(keypoints_3d, batch.keypoints_3d[index], has_3d, LOSS_MIN_DEPTH),
        }
