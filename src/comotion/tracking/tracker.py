"""Online multi-person tracking (paper section 3 "Track management", spec section 7).

Per frame: detect people, move every existing track to the frame with the update network (all
tracks in one batch, they attend to each other), score each track against the detections, start
tracks for detections no track explains, then end unhealthy tracks.  Two layers:

* :class:`TrackingEngine`: the state machine.  It only needs the frame's detections and a callable
  ``update_fn(TrackState) -> TrackState`` that moves tracks to the frame, so it runs (and is
  tested) without a network.
* :class:`Tracker`: binds the engine to a :class:`comotion.model.CoMotion` (detection, update
  step, optional shot-cut detector) and is what users call::

      tracker = model.tracker()
      for result in tracker.run(frames):        # frames: (image, K) pairs or io.sources frames
          result.tracks.ids, result.tracks.pose, ...
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from scipy.optimize import linear_sum_assignment

from comotion.geometry.camera import points_in_image
from comotion.geometry.similarity import oks_similarity
from comotion.model.detect import Detections
from comotion.tracking.config import TrackerConfig
from comotion.tracking.shots import ShotDetector
from comotion.tracking.state import TrackState

UpdateFn = Callable[[TrackState], TrackState]

# Padded-output field name (reference layout) -> TrackState field.
PADDED_FIELDS = {
    "betas": "betas",
    "pose": "pose",
    "trans": "trans",
    "pred_3d": "keypoints_3d",
    "pred_2d": "keypoints_2d",
    "hidden": "hidden",
}


@dataclass
class FrameResult:
    """What the tracker knows after one frame.

    Attributes:
        frame_index: frames processed before this one since construction or :meth:`Tracker.reset`.
        detections: this frame's detections (decreasing confidence).
        tracks: all live tracks after this frame, oldest first (see :class:`TrackState`;
            ``tracks.ids`` ``(N,)``, ``tracks.pose`` ``(N, 72)``, ... ``tracks.confidence`` ``(N,)``).
        created_ids: ids live now that were not live after the previous frame, in track order.
        ended_ids: ids live after the previous frame that are not live now.
        shot_cut: whether a shot cut dropped all previous tracks at this frame.
        max_output_tracks: default slot count of :meth:`padded`.
    """

    frame_index: int
    detections: Detections
    tracks: TrackState
    created_ids: list[int] = field(default_factory=list)
    ended_ids: list[int] = field(default_factory=list)
    shot_cut: bool = False
    max_output_tracks: int = 48

    def padded(self, max_tracks: int | None = None) -> dict[str, torch.Tensor]:
        """The reference's per-frame output: tracks in ``max_tracks`` slots (default
        ``max_output_tracks``), batch axis of 1.

        Returns ``id (1, S, 1)`` float (0 = empty slot), ``betas (1, S, 10)``, ``pose (1, S, 72)``,
        ``trans (1, S, 3)``, ``pred_3d (1, S, 27, 3)``, ``pred_2d (1, S, 27, 2)``,
        ``hidden (1, S, H)``.  With more than ``max_tracks`` tracks the oldest are kept.
        """
        tracks = self.tracks
        max_tracks = self.max_output_tracks if max_tracks is None else max_tracks
        kept = min(len(tracks), max_tracks)
        out = {}
        for name, attr in {"id": "ids", **PADDED_FIELDS}.items():
            value = getattr(tracks, attr)[:kept]
            if name == "id":
                value = value.to(tracks.pose.dtype)[:, None]
            slots = value.new_zeros(max_tracks, *value.shape[1:])
            slots[:kept] = value
            out[name] = slots[None]
        return out


def one_to_one_pairs(similarity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Track and detection indices ``(rows, cols)`` of the one-to-one pairing of ``similarity
    (N_tracks, N_detections)`` with the largest summed similarity (Hungarian assignment)."""
    rows, cols = linear_sum_assignment(similarity.detach().double().cpu().numpy(), maximize=True)
    return torch.as_tensor(rows, device=similarity.device), torch.as_tensor(cols, device=similarity.device)


def track_similarity(
    keypoints_a: torch.Tensor, keypoints_b: torch.Tensor, normalizer: float, std: float
) -> torch.Tensor:
    """Similarity ``(Na, Nb)`` of keypoints ``(Na|Nb, 27, 2)`` pixels, all points weighted 1."""
    return oks_similarity(keypoints_a / normalizer, keypoints_b / normalizer, std=std)


class TrackingEngine:
    """The tracker's state machine (spec sections 7.3-7.6), independent of the network.

    Args:
        config: thresholds and quirk switches.
        hidden_dim: H, width of the update network's hidden state (zeros for new tracks).
        image_size: ``(H, W)`` of the original frames (for the in-image fraction).
        device: where track tensors live.

    State kept across frames: the step counter, the last id given out (ids are never reused, also
    across shot cuts), the live tracks, and the collapse log (per id pair, the steps at which the
    pair overlapped).
    """

    def __init__(self, config: TrackerConfig, hidden_dim: int, image_size: tuple[int, int], device=None) -> None:
        self.config = config
        self.hidden_dim = hidden_dim
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.device = device
        self.normalizer = config.similarity_scale(self.image_size)
        self.step_count = 0
        self.last_id = 0
        self.tracks = TrackState.empty(hidden_dim, config.overlap_window, device=device)
        self.collapse_log: dict[tuple[int, int], deque[int]] = {}

    def similarity(self, keypoints_a: torch.Tensor, keypoints_b: torch.Tensor) -> torch.Tensor:
        return track_similarity(keypoints_a, keypoints_b, self.normalizer, self.config.similarity_std)

    # ------------------------------------------------------------------------------------------

    def step(self, detections: Detections, update_fn: UpdateFn, shot_cut: bool = False) -> FrameResult:
        """Advance one frame given its ``detections`` and ``update_fn`` bound to the frame."""
        self.step_count += 1
        previous_ids = self.tracks.ids.tolist()
        if shot_cut:
            self.tracks = self.tracks.select(slice(0, 0))
        if len(self.tracks):
            existing = update_fn(self.tracks)
            existing, match, new_tracks, new_scores = self._add_missing(existing, detections, update_fn)
            tracks = TrackState.cat([existing, new_tracks])
            match = torch.cat([match, new_scores])
        else:
            tracks, match = self._initialise(detections, update_fn)
        if len(tracks):
            tracks, similarity = self._log_health(tracks, match)
            tracks = tracks.select(self._keep(tracks, similarity))
        self.tracks = tracks
        ids = tracks.ids.tolist()
        live, before = set(ids), set(previous_ids)
        ended = [i for i in previous_ids if i not in live]
        # Ids are never reused, so pairs with an ended id can never be logged again.
        if any(a not in live or b not in live for a, b in self.collapse_log):
            self.collapse_log = {k: v for k, v in self.collapse_log.items() if k[0] in live and k[1] in live}
        return FrameResult(
            frame_index=self.step_count - 1,
            detections=detections,
            tracks=tracks,
            created_ids=[i for i in ids if i not in before],
            ended_ids=ended,
            shot_cut=shot_cut,
            max_output_tracks=self.config.max_output_tracks,
        )

    def _add_missing(
        self, existing: TrackState, detections: Detections, update_fn: UpdateFn
    ) -> tuple[TrackState, torch.Tensor, TrackState, torch.Tensor]:
        """The updated tracks (snapped to detections if configured), their match scores, and
        new tracks for detections no track explains, with their scores.

        A track's score is its best similarity with any detection (no exclusivity, quirk Q12).
        """
        if len(detections) == 0:
            match = torch.zeros(len(existing), dtype=existing.pose.dtype, device=existing.pose.device)
            return existing, match, existing.select(slice(0, 0)), match[:0]
        similarity = self.similarity(existing.keypoints_2d, detections.keypoints_2d)
        best = similarity.amax(dim=0)
        unexplained = best < self.config.missing_match_thr
        pairing_rule = self.config.unpaired_match_thr > self.config.missing_match_thr
        if self.config.snap_to_detections or pairing_rule:
            rows, cols = one_to_one_pairs(similarity)
            if pairing_rule:
                paired = torch.zeros_like(unexplained)
                paired[cols[similarity[rows, cols] >= self.config.missing_match_thr]] = True
                unexplained |= ~paired & (best < self.config.unpaired_match_thr)
            if self.config.snap_to_detections:
                existing = self._snap(existing, detections, rows, cols, similarity)
        new_tracks, new_scores = self._initialise(detections.select(unexplained), update_fn)
        return existing, similarity.amax(dim=1), new_tracks, new_scores

    def _snap(
        self, tracks: TrackState, detections: Detections, rows: torch.Tensor, cols: torch.Tensor, similarity: torch.Tensor
    ) -> TrackState:
        """Tracks whose one-to-one paired detection is more similar than ``snap_thr`` take its state."""
        close = similarity[rows, cols] > self.config.snap_thr
        rows, cols = rows[close], cols[close]
        snapped = {}
        for name in ("betas", "pose", "trans", "keypoints_3d", "keypoints_2d"):
            value = getattr(tracks, name).clone()
            value[rows] = getattr(detections, name)[cols].to(value.dtype)
            snapped[name] = value
        return tracks.replace(**snapped)

    def _initialise(self, detections: Detections, update_fn: UpdateFn) -> tuple[TrackState, torch.Tensor]:
        """Tracks started from ``detections`` and their self-consistency scores (spec 7.4).

        All candidates go through the update step together, before any is rejected (quirk Q11).
        """
        if len(detections) == 0:
            empty = TrackState.empty(self.hidden_dim, self.config.overlap_window, device=self.device)
            return empty, torch.zeros(0, device=self.device)
        candidates = TrackState.from_people(
            detections.betas,
            detections.pose,
            detections.trans,
            detections.keypoints_3d,
            detections.keypoints_2d,
            self.hidden_dim,
            self.config.overlap_window,
        )
        updated = update_fn(candidates)
        consistency = self.similarity(updated.keypoints_2d, detections.keypoints_2d).diagonal()
        keep = (consistency > self.config.init_match_thr) & (
            torch.sigmoid(detections.conf_logit) > self.config.init_conf_thr
        )
        kept = updated.select(keep)
        count = len(kept)
        kept.ids = torch.arange(self.last_id + 1, self.last_id + 1 + count, device=kept.ids.device)
        self.last_id += count
        return kept, consistency[keep]

    def _log_health(self, tracks: TrackState, match: torch.Tensor) -> tuple[TrackState, torch.Tensor]:
        """One health check of every track; also returns the track-track similarity ``(N, N)``."""
        cfg = self.config
        age = tracks.age + 1
        first = age == 1
        delta = tracks.trans - tracks.last_trans
        delta = torch.stack([delta[:, 0], delta[:, 1], delta[:, 2] * cfg.velocity_z_weight], dim=-1)
        speed = torch.where(first, torch.zeros_like(delta[:, 0]), delta.norm(dim=-1)).double()
        velocity = tracks.velocity.scatter(1, ((age - 1) % cfg.overlap_window)[:, None], speed[:, None])

        similarity = self.similarity(tracks.keypoints_2d, tracks.keypoints_2d)
        others = similarity.clone()
        others.fill_diagonal_(0.0)
        overlap = others.amax(dim=1) if len(tracks) > 1 else torch.zeros_like(similarity[:, 0])
        inbounds = points_in_image(tracks.keypoints_2d, *self.image_size).float().mean(dim=-1)

        def ema(previous: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
            value = value.double()
            return torch.where(first, value, cfg.ema_coef * previous + (1.0 - cfg.ema_coef) * value)

        tracks = tracks.replace(
            age=age,
            match=match.double(),
            match_ema=ema(tracks.match_ema, match),
            inbounds_ema=ema(tracks.inbounds_ema, inbounds),
            overlap_ema=ema(tracks.overlap_ema, overlap),
            last_trans=tracks.trans,
            velocity=velocity,
        )
        return tracks, similarity

    def _keep(self, tracks: TrackState, similarity: torch.Tensor) -> torch.Tensor:
        """Bool ``(N,)``: tracks that stay (spec 7.6 health rules after collapse handling)."""
        cfg = self.config
        delete = self._collapsed(tracks, similarity)
        delete |= (tracks.age <= cfg.young_age) & (tracks.match < cfg.match_discard_thr)
        delete |= tracks.match_ema < cfg.match_discard_thr
        delete |= tracks.inbounds_ema < cfg.inbounds_discard_thr
        return ~delete

    def _collapsed(self, tracks: TrackState, similarity: torch.Tensor) -> torch.Tensor:
        """Bool ``(N,)``: tracks marked redundant because they overlap another track.

        Pairs ``a < b`` (list order, so ``a`` is older) above ``overlap_thr``, each logged at the
        current step, are resolved by the first applicable rule:

        1. both younger than ``new_age``: the one with the lower match average ends (tie: ``b``);
        2. ``a`` younger than ``young_age``: ``a`` ends (cannot happen: ``a`` is older);
        3. ``b`` younger than ``young_age``: ``a`` ends (quirk Q6; ``b`` with ``fix_collapse_rule3``);
        4. the pair overlapped in more than ``overlap_time_thr`` of the last ``overlap_window``
           steps: a track whose peak root speed in the window exceeds ``vel_outlier_thr`` while the
           other's does not ends; else the one with the lower match average (tie: ``b``).  The
           reference reads ``a``'s speed for both (quirk Q7), so only the match average decides
           unless ``fix_collapse_velocity``.
        """
        cfg = self.config
        redundant = torch.zeros(len(tracks), dtype=torch.bool, device=similarity.device)
        first, second = torch.triu(similarity > cfg.overlap_thr, diagonal=1).nonzero(as_tuple=True)
        if len(first) == 0:
            return redundant
        counts = torch.tensor(
            [self._log_collapse(a, b) for a, b in zip(tracks.ids[first].tolist(), tracks.ids[second].tolist())],
            device=similarity.device,
        )
        age_a, age_b = tracks.age[first], tracks.age[second]
        match_a, match_b = tracks.match_ema[first], tracks.match_ema[second]
        both_new = (age_a < cfg.new_age) & (age_b < cfg.new_age)
        rule2 = ~both_new & (age_a < cfg.young_age)
        rule3 = ~both_new & ~rule2 & (age_b < cfg.young_age)
        rule4 = ~both_new & ~rule2 & ~rule3 & (counts > cfg.overlap_time_thr)

        peak_speed = tracks.velocity.amax(dim=1)
        speed_a = peak_speed[first]
        speed_b = peak_speed[second] if cfg.fix_collapse_velocity else speed_a
        a_jumps = (speed_a > cfg.vel_outlier_thr) & (speed_b < cfg.vel_outlier_thr)
        b_jumps = (speed_a < cfg.vel_outlier_thr) & (speed_b > cfg.vel_outlier_thr)
        by_match = both_new | (rule4 & ~a_jumps & ~b_jumps)
        a_worse = match_b > match_a

        mark_a = (by_match & a_worse) | rule2 | (rule4 & a_jumps)
        mark_b = (by_match & ~a_worse) | (rule4 & b_jumps)
        if cfg.fix_collapse_rule3:
            mark_b |= rule3
        else:
            mark_a |= rule3
        redundant[first[mark_a]] = True
        redundant[second[mark_b]] = True
        return redundant

    def _log_collapse(self, id_a: int, id_b: int) -> int:
        """Log that ``(id_a, id_b)`` overlap now; how often they did within the window."""
        log = self.collapse_log.setdefault((id_a, id_b), deque())
        log.append(self.step_count)
        while log[0] <= self.step_count - self.config.overlap_window:
            log.popleft()
        return len(log)


class Tracker:
    """Online tracker running a :class:`comotion.model.CoMotion` network.

    Args:
        model: the network with its body model.
        config: thresholds and quirk switches (default: the reference's).
        image_size: ``(H, W)`` of the original frames; default: the first frame's size.  As in the
            reference, later frames are assumed to have this size for the in-image test.

    Use :meth:`step` for live input, :meth:`run` for an iterable of frames, :meth:`reset` before
    an unrelated video (ids start again from 1).
    """

    def __init__(self, model, config: TrackerConfig | None = None, image_size: tuple[int, int] | None = None):
        self.model = model
        self.config = TrackerConfig() if config is None else config
        self.image_size = image_size
        self.reset()

    def reset(self) -> None:
        """Forget all tracks, ids and history (a new video)."""
        self.engine: TrackingEngine | None = None
        self.shot_detector = (
            ShotDetector(self.config.shot_threshold, self.config.shot_min_scene_len)
            if self.config.shot_cut_reset
            else None
        )

    def _update(self, features, tracks: TrackState) -> TrackState:
        moved = self.model.update(features, tracks.betas, tracks.pose, tracks.trans, tracks.keypoints_3d, tracks.hidden)
        return tracks.replace(
            pose=moved.pose,
            trans=moved.trans,
            keypoints_3d=moved.keypoints_3d,
            keypoints_2d=moved.keypoints_2d,
            hidden=moved.hidden,
        )

    @torch.inference_mode()
    def step(self, image, K: torch.Tensor | None = None) -> FrameResult:
        """Track one frame: ``image (3, H, W)`` uint8 (or float in [0, 1]) RGB, ``K (2, 3)`` pixels
        (``None``: f = 2 max(H, W), centred)."""
        frame = self.model.prepare(image, K)
        if self.engine is None:
            size = self.image_size if self.image_size is not None else frame.image_size
            self.engine = TrackingEngine(
                self.config, self.model.config.update.hidden_dim, size, device=frame.image.device
            )
        cfg = self.config
        detections, features = self.model.detect(
            frame, std=cfg.nms_std, iou_thr=cfg.nms_iou_thr, conf_thr=cfg.nms_conf_thr
        )
        shot_cut = self.shot_detector.process(image) if self.shot_detector is not None else False
        return self.engine.step(detections, lambda tracks: self._update(features, tracks), shot_cut)

    def run(self, frames: Iterable) -> Iterator[FrameResult]:
        """Track a sequence lazily.  Items are ``(image, K)`` pairs, bare images, or objects with
        ``.image`` and ``.K`` (the frames of :func:`comotion.io.sources.open_source`)."""
        for item in frames:
            if hasattr(item, "image"):
                yield self.step(item.image, getattr(item, "K", None))
            elif isinstance(item, (tuple, list)):
                yield self.step(*item)
            else:
                yield self.step(item)
