"""HOTA (Luiten et al., IJCV 2021), computed as TrackEval 1.3.0 does.

For every localisation threshold ``alpha = 0.05, 0.10, ..., 0.95``:

* per frame, detections are paired by a Hungarian assignment maximising
  ``global_alignment(gt id, track id) * IoU``, where the global alignment is the soft Jaccard overlap
  of the two id tracks over the whole sequence; a pair counts (TP) when ``IoU >= alpha``;
* ``DetA = TP / (TP + FN + FP)``, ``DetRe = TP / (TP + FN)``, ``DetPr = TP / (TP + FP)``;
* for every TP pair ``c`` with ids (g, t): ``A(c) = TPA / (TPA + FNA + FPA)`` where TPA counts the
  TPs between g and t, FNA the other appearances of g and FPA the other appearances of t;
  ``AssA`` is the mean of ``A`` over all TPs (``AssRe``/``AssPr`` likewise with only FNA / FPA);
* ``HOTA = sqrt(DetA * AssA)``, ``OWTA = sqrt(DetRe * AssA)``, ``LocA`` = mean IoU of the TPs.

Summary values are means over the 19 alphas; ``HOTA(0)``, ``LocA(0)`` are the values at the lowest
alpha and ``HOTALocA(0)`` their product.  Empty sequences follow TrackEval: 0 instead of NaN, LocA 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

ALPHAS = np.arange(0.05, 0.99, 0.05)
_EPS = np.finfo(float).eps
ARRAY_FIELDS = ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA", "OWTA")
COUNT_FIELDS = ("HOTA_TP", "HOTA_FN", "HOTA_FP")
SCALAR_FIELDS = ("HOTA(0)", "LocA(0)", "HOTALocA(0)")


@dataclass
class HotaFrame:
    """One frame: ``gt_ids (N,)``, ``tracker_ids (M,)``, ``similarity (N, M)`` (IoU)."""

    gt_ids: np.ndarray
    tracker_ids: np.ndarray
    similarity: np.ndarray


@dataclass
class HotaResult:
    """Per-alpha arrays ``(19,)`` (fields of :data:`ARRAY_FIELDS` and :data:`COUNT_FIELDS`, by name)."""

    arrays: dict[str, np.ndarray]

    def summary(self) -> dict[str, float]:
        """Means over alphas, plus ``HOTA(0)``, ``LocA(0)``, ``HOTALocA(0)``."""
        out = {name: float(np.mean(self.arrays[name])) for name in ARRAY_FIELDS}
        out["HOTA(0)"] = float(self.arrays["HOTA"][0])
        out["LocA(0)"] = float(self.arrays["LocA"][0])
        out["HOTALocA(0)"] = out["HOTA(0)"] * out["LocA(0)"]
        return out


def _finalize(arrays: dict[str, np.ndarray]) -> HotaResult:
    tp, fn, fp = arrays["HOTA_TP"], arrays["HOTA_FN"], arrays["HOTA_FP"]
    arrays["DetRe"] = tp / np.maximum(1, tp + fn)
    arrays["DetPr"] = tp / np.maximum(1, tp + fp)
    arrays["DetA"] = tp / np.maximum(1, tp + fn + fp)
    arrays["HOTA"] = np.sqrt(arrays["DetA"] * arrays["AssA"])
    arrays["OWTA"] = np.sqrt(arrays["DetRe"] * arrays["AssA"])
    return HotaResult(arrays)


def _relabel(ids_per_frame: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Map arbitrary ids to 0..K-1 (contiguous)."""
    all_ids = np.concatenate([np.asarray(ids, np.int64) for ids in ids_per_frame]) if ids_per_frame else np.zeros(0, np.int64)
    unique = np.unique(all_ids)
    return [np.searchsorted(unique, np.asarray(ids, np.int64)) for ids in ids_per_frame], len(unique)


def hota_sequence(frames: list[HotaFrame]) -> HotaResult:
    """HOTA arrays of one sequence (every frame of the sequence, in order)."""
    n = len(ALPHAS)
    arrays = {name: np.zeros(n) for name in ARRAY_FIELDS + COUNT_FIELDS}
    num_gt = sum(len(f.gt_ids) for f in frames)
    num_tracker = sum(len(f.tracker_ids) for f in frames)
    if num_tracker == 0 or num_gt == 0:
        if num_tracker == 0:
            arrays["HOTA_FN"][:] = num_gt
        else:
            arrays["HOTA_FP"][:] = num_tracker
        arrays["LocA"][:] = 1.0
        return _finalize(arrays)

    gt_ids, num_gt_ids = _relabel([f.gt_ids for f in frames])
    tracker_ids, num_tracker_ids = _relabel([f.tracker_ids for f in frames])

    # Soft global alignment between id tracks (before any one-to-one matching).
    potential = np.zeros((num_gt_ids, num_tracker_ids))
    gt_count = np.zeros((num_gt_ids, 1))
    tracker_count = np.zeros((1, num_tracker_ids))
    for g, t, frame in zip(gt_ids, tracker_ids, frames):
        sim = frame.similarity
        denom = sim.sum(0)[None, :] + sim.sum(1)[:, None] - sim
        sim_iou = np.zeros_like(sim)
        ok = denom > _EPS
        sim_iou[ok] = sim[ok] / denom[ok]
        potential[g[:, None], t[None, :]] += sim_iou
        gt_count[g] += 1
        tracker_count[0, t] += 1
    alignment = potential / (gt_count + tracker_count - potential)

    matches = np.zeros((n, num_gt_ids, num_tracker_ids))
    for g, t, frame in zip(gt_ids, tracker_ids, frames):
        if len(g) == 0 or len(t) == 0:
            arrays["HOTA_FP"] += len(t)
            arrays["HOTA_FN"] += len(g)
            continue
        sim = frame.similarity
        rows, cols = linear_sum_assignment(-(alignment[g[:, None], t[None, :]] * sim))
        matched_sim = sim[rows, cols]
        for a, alpha in enumerate(ALPHAS):
            ok = matched_sim >= alpha - _EPS
            count = int(ok.sum())
            arrays["HOTA_TP"][a] += count
            arrays["HOTA_FN"][a] += len(g) - count
            arrays["HOTA_FP"][a] += len(t) - count
            if count:
                arrays["LocA"][a] += matched_sim[ok].sum()
                matches[a, g[rows[ok]], t[cols[ok]]] += 1

    for a in range(n):
        m = matches[a]
        tp = np.maximum(1, arrays["HOTA_TP"][a])
        arrays["AssA"][a] = np.sum(m * (m / np.maximum(1, gt_count + tracker_count - m))) / tp
        arrays["AssRe"][a] = np.sum(m * (m / np.maximum(1, gt_count))) / tp
        arrays["AssPr"][a] = np.sum(m * (m / np.maximum(1, tracker_count))) / tp
    arrays["LocA"] = np.maximum(1e-10, arrays["LocA"]) / np.maximum(1e-10, arrays["HOTA_TP"])
    return _finalize(arrays)


def combine_hota(results: list[HotaResult]) -> HotaResult:
    """Combine sequences as TrackEval: counts summed, AssA/AssRe/AssPr and LocA TP-weighted."""
    arrays = {name: sum(r.arrays[name] for r in results) for name in COUNT_FIELDS}
    tp = arrays["HOTA_TP"]
    for name in ("AssA", "AssRe", "AssPr"):
        arrays[name] = sum(r.arrays[name] * r.arrays["HOTA_TP"] for r in results) / np.maximum(1.0, tp)
    located = sum(r.arrays["LocA"] * r.arrays["HOTA_TP"] for r in results)
    arrays["LocA"] = np.maximum(1e-10, located) / np.maximum(1e-10, tp)
    return _finalize(arrays)
