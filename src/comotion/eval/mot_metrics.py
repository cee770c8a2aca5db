"""CLEAR-MOT and identity metrics over :class:`~comotion.eval.accumulator.TrackingEvents`.

Each metric is a small function with the definition and name used by py-motmetrics 1.4.0 (and by
the PoseTrack21 evaluation's table: MOTA=``mota``, IDF1=``idf1``, Rcll=``recall``, FM=
``num_fragmentations`` ...).  Ratios are plain fractions; 0/0 is NaN.

:func:`summarize` computes all of them for one sequence; :func:`combine_summaries` merges several
sequences the way motmetrics computes its OVERALL row: counts are summed, ratios recomputed from the
sums, MOTP is the detection-weighted mean of the per-sequence MOTPs (NaN as soon as one sequence has
no paired detection, because NaN * 0 is NaN).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment

from comotion.eval.accumulator import EventType, TrackingEvents

MOSTLY_TRACKED_RATIO = 0.8
MOSTLY_LOST_RATIO = 0.2


def _divide(a: float, b: float) -> float:
    """``a / b`` with NaN for 0/0 (and +-inf for x/0), as motmetrics' ``quiet_divide``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.true_divide(a, b))


# ----------------------------------------------------------------------------------------------
# Counts


def num_frames(ev: TrackingEvents) -> int:
    """Number of evaluated frames."""
    return ev.num_frames


def num_matches(ev: TrackingEvents) -> int:
    """Pairings that keep the object's previous track (or are its first pairing)."""
    return int(ev.of_kind(EventType.MATCH).sum())


def num_switches(ev: TrackingEvents) -> int:
    """ID switches (IDs): an object paired with a track other than the one it was last paired with."""
    return int(ev.of_kind(EventType.SWITCH).sum())


def num_false_positives(ev: TrackingEvents) -> int:
    """Unpaired hypotheses that are not ignore candidates (FP)."""
    return int(ev.of_kind(EventType.FP).sum())


def num_misses(ev: TrackingEvents) -> int:
    """Unpaired ground-truth objects (FN)."""
    return int(ev.of_kind(EventType.MISS).sum())


def num_transfer(ev: TrackingEvents) -> int:
    """IDt: a track paired with an object other than the one it was last paired with."""
    return int(ev.of_kind(EventType.TRANSFER).sum())


def num_ascend(ev: TrackingEvents) -> int:
    """IDa: an ID switch to a track that was never paired before."""
    return int(ev.of_kind(EventType.ASCEND).sum())


def num_migrate(ev: TrackingEvents) -> int:
    """IDm: a transfer to an object that was never paired before."""
    return int(ev.of_kind(EventType.MIGRATE).sum())


def num_detections(ev: TrackingEvents) -> int:
    """Paired objects: matches + switches."""
    return num_matches(ev) + num_switches(ev)


def num_objects(ev: TrackingEvents) -> int:
    """Ground-truth boxes on evaluated frames (matches + switches + misses)."""
    return int(ev.of_kind(EventType.MATCH, EventType.SWITCH, EventType.MISS).sum())


def num_predictions(ev: TrackingEvents) -> int:
    """Counted predictions: matches + switches + false positives (ignored boxes are not counted)."""
    return int(ev.of_kind(EventType.MATCH, EventType.SWITCH, EventType.FP).sum())


def num_unique_objects(ev: TrackingEvents) -> int:
    """Distinct ground-truth ids on evaluated frames (GT)."""
    return len(np.unique(ev.object_id[ev.of_kind(EventType.MATCH, EventType.SWITCH, EventType.MISS)]))


# ----------------------------------------------------------------------------------------------
# Per-object track coverage


def track_ratios(ev: TrackingEvents) -> dict[int, float]:
    """Per ground-truth id: the share of its appearances in which it was paired."""
    mask = ev.of_kind(EventType.MATCH, EventType.SWITCH, EventType.MISS)
    ids, counts = np.unique(ev.object_id[mask], return_counts=True)
    paired = ev.object_id[ev.of_kind(EventType.MATCH, EventType.SWITCH)]
    paired_ids, paired_counts = np.unique(paired, return_counts=True)
    paired_of = dict(zip(paired_ids.tolist(), paired_counts.tolist()))
    return {o: paired_of.get(o, 0) / n for o, n in zip(ids.tolist(), counts.tolist())}


def mostly_tracked(ev: TrackingEvents) -> int:
    """MT: ground-truth ids paired in at least 80 % of their appearances."""
    return sum(r >= MOSTLY_TRACKED_RATIO for r in track_ratios(ev).values())


def partially_tracked(ev: TrackingEvents) -> int:
    """PT: ground-truth ids paired in at least 20 % and less than 80 % of their appearances."""
    return sum(MOSTLY_LOST_RATIO <= r < MOSTLY_TRACKED_RATIO for r in track_ratios(ev).values())


def mostly_lost(ev: TrackingEvents) -> int:
    """ML: ground-truth ids paired in less than 20 % of their appearances."""
    return sum(r < MOSTLY_LOST_RATIO for r in track_ratios(ev).values())


def num_fragmentations(ev: TrackingEvents) -> int:
    """FM: per ground-truth id, between its first and last paired appearance, the number of times a
    paired appearance is followed by a missed one.  Only the object's own appearances count: frames
    where it has no ground-truth box do not interrupt it."""
    mask = ev.of_kind(EventType.MATCH, EventType.SWITCH, EventType.MISS)
    objects = ev.object_id[mask]
    missed = ev.kind[mask] == EventType.MISS
    total = 0
    for o in np.unique(objects):
        states = missed[objects == o]  # event order = frame order
        (paired_at,) = np.nonzero(~states)
        if len(paired_at) == 0:
            continue
        span = states[paired_at[0] : paired_at[-1] + 1].astype(np.int64)
        total += int((np.diff(span) == 1).sum())
    return total


# ----------------------------------------------------------------------------------------------
# Ratios


def motp(ev: TrackingEvents) -> float:
    """MOTP: mean distance ``1 - IoU`` over paired objects (0 is perfect; NaN without pairs)."""
    paired = ev.of_kind(EventType.MATCH, EventType.SWITCH)
    return _divide(ev.distance[paired].sum(), int(paired.sum()))


def mota(num_misses: int, num_switches: int, num_false_positives: int, num_objects: int) -> float:
    """MOTA = 1 - (FN + IDs + FP) / num_objects (can be negative)."""
    return 1.0 - _divide(num_misses + num_switches + num_false_positives, num_objects)


def precision(num_detections: int, num_false_positives: int) -> float:
    """Prcn = detections / (detections + FP)."""
    return _divide(num_detections, num_detections + num_false_positives)


def recall(num_detections: int, num_objects: int) -> float:
    """Rcll = detections / num_objects."""
    return _divide(num_detections, num_objects)


# ----------------------------------------------------------------------------------------------
# Identity metrics (Ristani et al. 2016)


def id_true_positives(ev: TrackingEvents) -> int:
    """IDTP: the largest number of (frame, object) appearances that a one-to-one global assignment of
    ground-truth ids to track ids can cover, counting an appearance when the assigned track is
    present on that frame within the pairing threshold (whether or not it was paired there)."""
    if len(ev.pair_object_id) == 0:
        return 0
    objects, o_index = np.unique(ev.pair_object_id, return_inverse=True)
    hypotheses, h_index = np.unique(ev.pair_hypothesis_id, return_inverse=True)
    together = np.zeros((len(objects), len(hypotheses)))
    np.add.at(together, (o_index, h_index), 1.0)
    rows, cols = linear_sum_assignment(together, maximize=True)
    return int(together[rows, cols].sum())


def id_false_negatives(ev: TrackingEvents, idtp: int) -> int:
    """IDFN = object appearances not covered by the global assignment."""
    return len(ev.object_presence_id) - idtp


def id_false_positives(ev: TrackingEvents, idtp: int) -> int:
    """IDFP = present track boxes not covered by the global assignment.  Unpaired ignore candidates
    with no ground truth within the threshold are not present (see :mod:`~comotion.eval.accumulator`)."""
    return len(ev.hypothesis_presence_id) - idtp


def idp(idtp: int, idfp: int) -> float:
    """IDP = IDTP / (IDTP + IDFP)."""
    return _divide(idtp, idtp + idfp)


def idr(idtp: int, idfn: int) -> float:
    """IDR = IDTP / (IDTP + IDFN)."""
    return _divide(idtp, idtp + idfn)


def idf1(idtp: int, num_objects: int, num_predictions: int) -> float:
    """IDF1 = 2 IDTP / (num_objects + num_predictions), motmetrics' form.  It equals the harmonic mean
    of IDP and IDR unless present ignore candidates make IDP's denominator larger."""
    return _divide(2 * idtp, num_objects + num_predictions)


# ----------------------------------------------------------------------------------------------
# Summaries

COUNT_FIELDS = (
    "num_false_positives", "num_misses", "num_switches", "num_fragmentations", "num_objects",
    "num_predictions", "num_matches", "num_detections", "num_frames", "num_unique_objects",
    "mostly_tracked", "partially_tracked", "mostly_lost", "num_transfer", "num_ascend", "num_migrate",
    "idtp", "idfp", "idfn",
)  # fmt: skip
RATIO_FIELDS = ("mota", "motp", "idf1", "idp", "idr", "recall", "precision")


def _ratios(counts: dict[str, int]) -> dict[str, float]:
    return {
        "mota": mota(counts["num_misses"], counts["num_switches"], counts["num_false_positives"], counts["num_objects"]),
        "idf1": idf1(counts["idtp"], counts["num_objects"], counts["num_predictions"]),
        "idp": idp(counts["idtp"], counts["idfp"]),
        "idr": idr(counts["idtp"], counts["idfn"]),
        "recall": recall(counts["num_detections"], counts["num_objects"]),
        "precision": precision(counts["num_detections"], counts["num_false_positives"]),
    }


def summarize(ev: TrackingEvents) -> dict[str, float | int]:
    """All CLEAR-MOT and identity metrics of one sequence (keys: :data:`RATIO_FIELDS` + :data:`COUNT_FIELDS`)."""
    idtp = id_true_positives(ev)
    counts = {
        "num_false_positives": num_false_positives(ev),
        "num_misses": num_misses(ev),
        "num_switches": num_switches(ev),
        "num_fragmentations": num_fragmentations(ev),
        "num_objects": num_objects(ev),
        "num_predictions": num_predictions(ev),
        "num_matches": num_matches(ev),
        "num_detections": num_detections(ev),
        "num_frames": num_frames(ev),
        "num_unique_objects": num_unique_objects(ev),
        "mostly_tracked": mostly_tracked(ev),
        "partially_tracked": partially_tracked(ev),
        "mostly_lost": mostly_lost(ev),
        "num_transfer": num_transfer(ev),
        "num_ascend": num_ascend(ev),
        "num_migrate": num_migrate(ev),
        "idtp": idtp,
        "idfp": id_false_positives(ev, idtp),
        "idfn": id_false_negatives(ev, idtp),
    }
    return {**_ratios(counts), "motp": motp(ev), **counts}


def combine_summaries(summaries: list[dict[str, float | int]]) -> dict[str, float | int]:
    """The OVERALL row: counts summed, ratios recomputed, MOTP detection-weighted (NaN-propagating)."""
    counts = {name: sum(int(s[name]) for s in summaries) for name in COUNT_FIELDS}
    weighted = sum(float(s["motp"]) * int(s["num_detections"]) for s in summaries)
    combined_motp = _divide(weighted, counts["num_detections"]) if summaries else math.nan
    return {**_ratios(counts), "motp": combined_motp, **counts}
