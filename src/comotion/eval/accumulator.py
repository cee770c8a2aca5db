"""Per-frame CLEAR-MOT matching that records events, in the manner of py-motmetrics 1.4.0.

For each evaluated frame the accumulator receives the ground-truth object ids, the hypothesis
(track) ids and their distance matrix (``1 - IoU``; NaN where pairing is not allowed) and records:

* matching events: ``MATCH``, ``SWITCH``, ``MISS``, ``FP`` (one per object / unpaired hypothesis),
  plus the extra ``TRANSFER``, ``ASCEND``, ``MIGRATE`` events that accompany some pairings;
* presence: which objects and hypotheses exist on the frame and which (object, hypothesis) pairs
  could be paired (finite distance) -- motmetrics' ``RAW`` events, used by the identity metrics.

Matching, as in motmetrics: (1) an object keeps the hypothesis it was last paired with when that
hypothesis is present and pairing is allowed; (2) the remaining objects and hypotheses are paired by
a minimum-cost assignment that first maximises the number of allowed pairs, then minimises the
summed distance; a pairing that differs from the object's previous one is a ``SWITCH``.

Ignore candidates (PoseTrack21 protocol): an unpaired hypothesis flagged as a candidate is not a
false positive; if it also has no allowed pairing on the frame it vanishes from the frame entirely
(no presence), otherwise it stays present for the identity metrics.  Paired candidates are ordinary.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy.optimize import linear_sum_assignment

NO_ID = np.iinfo(np.int64).min


class EventType(IntEnum):
    """Kinds of matching events (values are stable, they index arrays)."""

    MATCH = 0
    SWITCH = 1
    MISS = 2
    FP = 3
    TRANSFER = 4
    ASCEND = 5
    MIGRATE = 6


@dataclass
class TrackingEvents:
    """Everything the tracking metrics need from one sequence.

    Matching events ``(E,)``, in the order they were generated: ``frame`` (evaluated-frame counter from
    0), ``kind`` (:class:`EventType` values), ``object_id`` / ``hypothesis_id`` (``NO_ID`` when the
    event has none), ``distance`` (``1 - IoU`` of the pair, NaN when unpaired).

    Presence: ``object_frame``/``object_presence_id`` ``(Po,)`` one row per (frame, present object);
    ``hypothesis_frame``/``hypothesis_presence_id`` ``(Ph,)`` likewise for hypotheses;
    ``pair_object_id``/``pair_hypothesis_id`` ``(Pp,)`` one row per (frame, allowed pair).
    """

    num_frames: int
    frame: np.ndarray
    kind: np.ndarray
    object_id: np.ndarray
    hypothesis_id: np.ndarray
    distance: np.ndarray
    object_frame: np.ndarray
    object_presence_id: np.ndarray
    hypothesis_frame: np.ndarray
    hypothesis_presence_id: np.ndarray
    pair_object_id: np.ndarray
    pair_hypothesis_id: np.ndarray

    def of_kind(self, *kinds: EventType) -> np.ndarray:
        """Boolean mask ``(E,)`` of the events of the given kinds."""
        return np.isin(self.kind, [int(k) for k in kinds])


def min_cost_pairs(distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the allowed pairs (finite ``distances``) chosen by a min-cost assignment
    that first maximises the number of allowed pairs (motmetrics' "expensive edges")."""
    valid = np.isfinite(distances)
    if not valid.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    c = np.abs(distances[valid]).max() + 1
    costs = np.where(valid, distances, 2 * min(distances.shape) * c + 1)
    rows, cols = linear_sum_assignment(costs)
    keep = valid[rows, cols]
    return rows[keep], cols[keep]


class MotAccumulator:
    """Accumulates matching events frame by frame; :meth:`events` returns the arrays."""

    def __init__(self) -> None:
        self._events: list[tuple[int, int, int, int, float]] = []
        self._objects: list[tuple[int, int]] = []
        self._hypotheses: list[tuple[int, int]] = []
        self._pairs: list[tuple[int, int]] = []
        self._num_frames = 0
        self._last_hypothesis: dict[int, int] = {}  # object -> hypothesis it was last paired with
        self._last_object: dict[int, int] = {}  # hypothesis -> object it was last paired with
        self._paired_objects: set[int] = set()
        self._paired_hypotheses: set[int] = set()

    def update(
        self,
        object_ids: np.ndarray,
        hypothesis_ids: np.ndarray,
        distances: np.ndarray,
        ignore_candidates: np.ndarray | None = None,
    ) -> None:
        """Record one frame.

        Args:
            object_ids: ``(N,)`` ground-truth ids (unique within the frame).
            hypothesis_ids: ``(M,)`` track ids (unique within the frame).
            distances: ``(N, M)`` pairing distances, NaN where pairing is not allowed.
            ignore_candidates: ``(M,)`` bool, hypotheses inside an ignore region (or None).
        """
        frame = self._num_frames
        self._num_frames += 1
        objects = np.asarray(object_ids, np.int64)
        hypotheses = np.asarray(hypothesis_ids, np.int64)
        distances = np.asarray(distances, np.float64).reshape(len(objects), len(hypotheses)).copy()
        allowed = np.isfinite(distances)
        object_paired = np.zeros(len(objects), bool)
        hypothesis_paired = np.zeros(len(hypotheses), bool)

        # 1. Keep pairings from earlier frames that are still allowed.
        for i, o in enumerate(objects.tolist()):
            if o not in self._last_hypothesis:
                continue
            (js,) = np.nonzero(~hypothesis_paired & (hypotheses == self._last_hypothesis[o]))
            if len(js) and allowed[i, js[0]]:
                j = js[0]
                object_paired[i] = hypothesis_paired[j] = True
                # motmetrics does not update the hypothesis -> object map when a pairing is kept.
                self._pair(frame, o, int(hypotheses[j]), distances[i, j], EventType.MATCH, kept=True)

        # 2. Assign the rest.
        remaining = distances.copy()
        remaining[object_paired, :] = np.nan
        remaining[:, hypothesis_paired] = np.nan
        for i, j in zip(*min_cost_pairs(remaining)):
            o, h = int(objects[i]), int(hypotheses[j])
            is_switch = o in self._last_hypothesis and self._last_hypothesis[o] != h
            if is_switch and h not in self._paired_hypotheses:
                self._events.append((frame, EventType.ASCEND, o, h, distances[i, j]))
            if h in self._last_object and self._last_object[h] != o:
                if o not in self._paired_objects:
                    self._events.append((frame, EventType.MIGRATE, o, h, distances[i, j]))
                self._events.append((frame, EventType.TRANSFER, o, h, distances[i, j]))
            object_paired[i] = hypothesis_paired[j] = True
            self._pair(frame, o, h, distances[i, j], EventType.SWITCH if is_switch else EventType.MATCH)

        # 3./4. Misses and false positives; unpaired ignore candidates are not false positives.
        for o in objects[~object_paired].tolist():
            self._events.append((frame, EventType.MISS, o, NO_ID, np.nan))
        candidate = np.zeros(len(hypotheses), bool) if ignore_candidates is None else np.asarray(ignore_candidates, bool)
        for h in hypotheses[~hypothesis_paired & ~candidate].tolist():
            self._events.append((frame, EventType.FP, NO_ID, h, np.nan))

        vanished = ~hypothesis_paired & candidate & ~allowed.any(axis=0)
        self._objects.extend((frame, o) for o in objects.tolist())
        self._hypotheses.extend((frame, h) for h in hypotheses[~vanished].tolist())
        rows, cols = np.nonzero(allowed)
        self._pairs.extend(zip(objects[rows].tolist(), hypotheses[cols].tolist()))

    def _pair(self, frame: int, o: int, h: int, distance: float, kind: EventType, kept: bool = False) -> None:
        self._events.append((frame, kind, o, h, float(distance)))
        self._last_hypothesis[o] = h
        if not kept:
            self._last_object[h] = o
        self._paired_objects.add(o)
        self._paired_hypotheses.add(h)

    def events(self) -> TrackingEvents:
        """The recorded events as arrays."""
        ev = self._events
        objects = np.array(self._objects, np.int64).reshape(-1, 2)
        hypotheses = np.array(self._hypotheses, np.int64).reshape(-1, 2)
        pairs = np.array(self._pairs, np.int64).reshape(-1, 2)
        return TrackingEvents(
            num_frames=self._num_frames,
            frame=np.array([e[0] for e in ev], np.int64),
            kind=np.array([int(e[1]) for e in ev], np.int64),
            object_id=np.array([e[2] for e in ev], np.int64),
            hypothesis_id=np.array([e[3] for e in ev], np.int64),
            distance=np.array([e[4] for e in ev], np.float64),
            object_frame=objects[:, 0],
            object_presence_id=objects[:, 1],
            hypothesis_frame=hypotheses[:, 0],
            hypothesis_presence_id=hypotheses[:, 1],
            pair_object_id=pairs[:, 0],
            pair_hypothesis_id=pairs[:, 1],
        )
