"""Configuration of the online tracker: every threshold of the track-management heuristics.

The defaults reproduce the reference implementation (spec section 7), including its quirks;
:meth:`TrackerConfig.fixed` turns every fix on.  The paper (section 3, "Track management")
presents these numbers as sensible defaults to tune per application, not magic constants.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from comotion.errors import InputError


@dataclass
class TrackerConfig:
    """Thresholds and switches of :class:`comotion.tracking.Tracker`.

    Similarities are the modified OKS (spec section 4.3) of 2-D keypoints in original pixels
    divided by ``similarity_normalizer`` (or by the longer image side, see
    ``normalize_similarity_by_image``), all keypoints weighted 1, kernel width ``similarity_std``.

    Attributes:
        init_conf_thr: a detection starts a track only if ``sigmoid(logit)`` exceeds this.
        init_match_thr: ... and if, after one update step, its keypoints still agree with the
            detection with a similarity above this ("self-consistency").
        missing_match_thr: a detection whose best similarity to every existing track is below
            this is a person the tracker misses; it becomes a candidate new track.
        max_output_tracks: slots of the padded per-frame output (:meth:`FrameResult.padded`);
            older tracks win when more are alive (all keep being tracked).
        overlap_thr: two tracks whose similarity exceeds this have "collapsed" onto one person.
        overlap_time_thr: a collapsed pair of older tracks is resolved once it was collapsed in
            more than this many of the last ``overlap_window`` frames.
        overlap_window: frames looked back for collapse counts and root velocities.
        vel_outlier_thr: root speed (metres per frame, depth weighted by ``velocity_z_weight``)
            above which a collapsed track counts as jumping; only used with
            ``fix_collapse_velocity``.
        velocity_z_weight: weight of the depth change in the root speed (depth is the least
            reliable coordinate).
        match_discard_thr: a track whose moving-average match score drops below this ends.
        inbounds_discard_thr: a track whose moving-average fraction of keypoints inside the
            image drops below this ends.
        ema_coef: moving-average coefficient, ``ema = coef * ema + (1 - coef) * value``.
        young_age: a track that has received at most this many updates ends on a single raw
            match score below ``match_discard_thr``; in collapse rules 2 and 3 a track with fewer
            updates than this counts as just created.
        new_age: two collapsed tracks that both have fewer updates than this are resolved at
            once, keeping the better-matched one.
        similarity_std: width of the similarity's Cauchy kernel.
        similarity_normalizer: pixels are divided by this before comparing keypoints.
        nms_std, nms_iou_thr, nms_conf_thr: the detection's NMS settings in the tracker.
        shot_cut_reset: ``False`` (reference, quirk Q3: its shot detector never fires): ignore
            shot cuts.  ``True``: a content-based cut detector (HSV difference, as PySceneDetect's
            ContentDetector) drops all tracks at a cut; new tracks get new ids.
        shot_threshold, shot_min_scene_len: cut detector threshold on the content score
            (0-255 scale) and minimum frames between cuts.
        fix_collapse_rule3: ``False`` (reference, quirk Q6): when a collapsed pair is an old track
            and one younger than ``young_age``, the *old* one ends.  ``True``: the young one ends.
        fix_collapse_velocity: ``False`` (reference, quirk Q7): the velocity test of a long
            collapse reads the first track's velocity for both tracks, so it never fires and the
            match average decides.  ``True``: each track's own velocity is used and a track
            jumping faster than ``vel_outlier_thr`` while the other does not is the one that ends.
        normalize_similarity_by_image: ``False`` (reference, quirk Q5): keypoints are compared in
            pixels / ``similarity_normalizer``, so thresholds depend on the input resolution.
            ``True``: pixels / the longer image side.
        snap_to_detections: ``False`` (reference): detections only start tracks.  ``True``
            (beyond the paper): after the update step, tracks and detections are paired one to
            one (Hungarian, most similar overall) and a track whose pair is more similar than
            ``snap_thr`` takes the detection's betas, pose, translation and keypoints; it keeps
            its id, hidden state and health history, and its match score is still that of its
            own updated pose.  For networks whose update step follows people less well than
            their detector finds them (the small default model).
        snap_thr: similarity above which a paired track takes its detection's state.
        unpaired_match_thr: ``0`` (reference): a detection starts a candidate track only by
            ``missing_match_thr``.  Above ``missing_match_thr`` (beyond the paper): tracks and
            detections are paired one to one as for snapping, and a detection left unpaired (or
            paired below ``missing_match_thr``) is also a candidate unless some track is more
            similar to it than this.  Without it a person next to a tracked one, whose
            detection is "explained" by that track although the track has its own, is never
            started.
        cleanup_match_thr, cleanup_min_frames: the offline cleanup's ``min_match_score`` and
            ``min_matched_frames`` (:class:`comotion.tracking.cleanup.CleanupConfig`) for tracks
            of these settings: a kept track needs more than ``cleanup_min_frames`` frames in
            which a detection is more similar to it than ``cleanup_match_thr``, and is trimmed to
            the first and last of them.  Defaults: the reference demo's 0.6 and 1.  Stored here
            because the cleanup judges agreement with this config's kernel (``similarity_std``),
            so its threshold is tuned with it.
    """

    init_conf_thr: float = 0.2
    init_match_thr: float = 0.75
    missing_match_thr: float = 0.2
    max_output_tracks: int = 48
    overlap_thr: float = 0.6
    overlap_time_thr: int = 20
    overlap_window: int = 30
    vel_outlier_thr: float = 0.25
    velocity_z_weight: float = 1.0 / 3.0
    match_discard_thr: float = 0.15
    inbounds_discard_thr: float = 0.15
    ema_coef: float = 0.8
    young_age: int = 3
    new_age: int = 5
    similarity_std: float = 0.08
    similarity_normalizer: float = 1024.0
    nms_std: float = 0.08
    nms_iou_thr: float = 0.4
    nms_conf_thr: float = 0.1
    shot_cut_reset: bool = False
    shot_threshold: float = 50.0
    shot_min_scene_len: int = 3
    fix_collapse_rule3: bool = False
    fix_collapse_velocity: bool = False
    normalize_similarity_by_image: bool = False
    snap_to_detections: bool = False
    snap_thr: float = 0.5
    unpaired_match_thr: float = 0.0
    cleanup_match_thr: float = 0.6
    cleanup_min_frames: int = 1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first out-of-range field."""
        positive = ("max_output_tracks", "overlap_window", "similarity_std", "similarity_normalizer", "nms_std")
        for name in positive:
            if not getattr(self, name) > 0:
                raise InputError(f"tracker config: {name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.ema_coef < 1.0:
            raise InputError(f"tracker config: ema_coef must be in [0, 1), got {self.ema_coef}")
        if self.overlap_time_thr >= self.overlap_window:
            raise InputError(
                f"tracker config: overlap_time_thr ({self.overlap_time_thr}) must be smaller than "
                f"overlap_window ({self.overlap_window})"
            )
        if not 0.0 <= self.cleanup_match_thr <= 1.0:
            raise InputError(f"tracker config: cleanup_match_thr must be in [0, 1], got {self.cleanup_match_thr}")
        for name in ("young_age", "new_age", "shot_min_scene_len", "overlap_time_thr", "cleanup_min_frames"):
            if getattr(self, name) < 0:
                raise InputError(f"tracker config: {name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def fixed(cls, **overrides) -> TrackerConfig:
        """The reference defaults with every quirk fix on (Q3, Q5, Q6, Q7)."""
        fixes = {
            "shot_cut_reset": True,
            "fix_collapse_rule3": True,
            "fix_collapse_velocity": True,
            "normalize_similarity_by_image": True,
        }
        fixes.update(overrides)
        return cls(**fixes)

    def similarity_scale(self, image_size: tuple[int, int]) -> float:
        """Divisor turning original-image pixels into similarity units for an ``(H, W)`` image."""
        return float(max(image_size)) if self.normalize_similarity_by_image else self.similarity_normalizer

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def recorded_in(cls, header: dict) -> TrackerConfig:
        """The config a results header (``comotion.io.results.read_header``) records under
        ``"config"``; the reference defaults when it records none."""
        recorded = header.get("config")
        return cls(**recorded) if isinstance(recorded, dict) else cls()


def checked_tracker_settings(settings: dict, what: str) -> dict:
    """A copy of ``settings`` (:class:`TrackerConfig` field -> value) after checking that every
    name is a field and every value in range; :class:`InputError` prefixed with ``what``."""
    unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(TrackerConfig)})
    if unknown:
        raise InputError(f"{what}: unknown tracker setting(s) {', '.join(unknown)}")
    TrackerConfig(**settings)  # range checks, one-line InputError
    return dict(settings)


def parse_tracker_settings(items: list[str]) -> dict:
    """``["init_conf_thr=0.5", "shot_cut_reset=true", ...]`` -> typed :class:`TrackerConfig` fields.

    Raises :class:`InputError` naming the item for a missing ``=``, an unknown field or a value
    of the wrong type.
    """
    types = {f.name: f.type for f in dataclasses.fields(TrackerConfig)}
    settings = {}
    for item in items:
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep:
            raise InputError(f"tracker setting {item!r}: expected NAME=VALUE")
        if name not in types:
            raise InputError(f"tracker setting {item!r}: unknown name {name!r}; known: {', '.join(types)}")
        kind = types[name]
        try:
            if kind == "bool":
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value = text.lower() in ("true", "1")
            else:
                value = {"int": int, "float": float}[kind](text)
        except ValueError:
            raise InputError(f"tracker setting {item!r}: {name} takes a {kind}, got {text!r}") from None
        settings[name] = value
    return settings
