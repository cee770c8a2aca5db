"""Box-tracking evaluation with two protocols (see docs/evaluation.md).

``posetrack21``
    The corrected PoseTrack21 protocol that CoMotion reports: only images with at least one
    ground-truth box are evaluated (the others do not exist for any statistic), and an unpaired
    prediction that lies in an ignore region (some polygon covers more than 10 % of the box) is not a
    false positive.  CLEAR-MOT and identity metrics.

``mot``
    Plain MOT: every image is evaluated, no ignore regions.  CLEAR-MOT and identity metrics plus the
    HOTA family.

Both share the decoding of :mod:`~comotion.eval.tracking_data` and the per-frame matching of
:mod:`~comotion.eval.accumulator` (pairs need IoU >= 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from comotion.errors import InputError
from comotion.eval import hota as hota_lib
from comotion.eval import mot_metrics
from comotion.eval.accumulator import MotAccumulator
from comotion.eval.regions import (
    IGNORE_FRACTION_THRESHOLD,
    ignore_candidates,
    repair_polygons,
)
from comotion.eval.tracking_data import (
    FrameBoxes,
    TrackingSequence,
    check_result_folder,
    find_sequence_root,
    list_sequences,
    read_result_file,
    read_sequence,
    result_file_for,
)

PROTOCOLS = ("posetrack21", "mot")
IOU_THRESHOLD = 0.5


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``(N, M)`` of corner boxes ``a (N, 4)`` and ``b (M, 4)`` ``[x1, y1, x2, y2]`` (real-valued
    rectangles, no +1 pixel convention; boxes with negative size have zero area)."""
    a = np.asarray(a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(b, np.float64).reshape(1, -1, 4)
    inter_w = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0)
    inter_h = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0)
    inter = inter_w * inter_h
    area_a = np.maximum(a[..., 2] - a[..., 0], 0) * np.maximum(a[..., 3] - a[..., 1], 0)
    area_b = np.maximum(b[..., 2] - b[..., 0], 0) * np.maximum(b[..., 3] - b[..., 1], 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / (area_a + area_b - inter), 0.0)


def iou_distances(gt: np.ndarray, pred: np.ndarray, threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """Pairing distances ``1 - IoU`` ``(N, M)``, NaN where ``1 - IoU > 1 - threshold``."""
    distance = 1.0 - box_iou(gt, pred)
    return np.where(distance > 1.0 - threshold, np.nan, distance)


@dataclass
class SequenceResult:
    """Metrics of one sequence: ``metrics`` (see :func:`mot_metrics.summarize`) and, for the ``mot``
    protocol, the HOTA result."""

    metrics: dict[str, float | int]
    hota: hota_lib.HotaResult | None = None


@dataclass
class TrackingReport:
    """``overall`` and ``per_sequence`` metric dicts (NaN for 0/0), plus notes on inputs."""

    protocol: str
    overall: dict[str, float | int]
    per_sequence: dict[str, dict[str, float | int]]
    notes: list[str] = field(default_factory=list)


def evaluate_sequence(
    sequence: TrackingSequence,
    predictions: list[FrameBoxes],
    protocol: str,
    ignore_threshold: float = IGNORE_FRACTION_THRESHOLD,
) -> SequenceResult:
    """Evaluate one sequence's predictions (one :class:`FrameBoxes` per image) under ``protocol``
    (``ignore_threshold``: the box fraction above which a box is in an ignore region, posetrack21 only)."""
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")
    if len(predictions) != sequence.num_images:
        raise InputError(f"{sequence.name}: {len(predictions)} prediction frames for {sequence.num_images} images")
    accumulator = MotAccumulator()
    hota_frames = []
    for gt, pred, regions in zip(sequence.gt, predictions, sequence.ignore_regions):
        if protocol == "posetrack21" and len(gt) == 0:
            continue  # unannotated images are not evaluated at all
        distances = iou_distances(gt.boxes, pred.boxes)
        candidates = None
        if protocol == "posetrack21" and regions and len(pred):
            candidates = ignore_candidates(repair_polygons(regions), pred.boxes, ignore_threshold)
        accumulator.update(gt.ids, pred.ids, distances, candidates)
        if protocol == "mot":
            hota_frames.append(hota_lib.HotaFrame(gt.ids, pred.ids, box_iou(gt.boxes, pred.boxes)))
    metrics = mot_metrics.summarize(accumulator.events())
    hota = hota_lib.hota_sequence(hota_frames) if protocol == "mot" else None
    if hota is not None:
        metrics.update(hota_fields(hota))
    return SequenceResult(metrics, hota)


def hota_fields(result: hota_lib.HotaResult) -> dict[str, float]:
    """HOTA summary with lower-case keys (``hota``, ``deta``, ``assa``, ..., ``hota(0)``)."""
    return {name.lower(): value for name, value in result.summary().items()}


def evaluate_tracking(
    dataset: str | Path,
    results: str | Path,
    protocol: str = "posetrack21",
    ignore_threshold: float = IGNORE_FRACTION_THRESHOLD,
) -> TrackingReport:
    """Evaluate a folder of MOT result files against a PoseTrack21-layout dataset.

    Args:
        dataset: dataset root (or any level down to the folder of sequence folders).
        results: folder with one result file per sequence (``<seq>`` or ``<seq>.txt``).
        protocol: ``"posetrack21"`` or ``"mot"``.
        ignore_threshold: ignore-region box fraction (posetrack21; 0.1 in the released evaluation,
            the paper's appendix mentions 0.3).
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")
    root = find_sequence_root(dataset)
    names = list_sequences(root)
    results = Path(results)
    check_result_folder(results, [child.name for child in root.iterdir() if child.is_dir()])
    per_sequence: dict[str, SequenceResult] = {}
    notes = []
    for name in names:
        sequence = read_sequence(root, name)
        path = result_file_for(results, name)
        if path is None:
            notes.append(f"{name}: no result file, every ground-truth box counts as a miss")
        predictions = read_result_file(path, sequence.num_images)
        per_sequence[name] = evaluate_sequence(sequence, predictions, protocol, ignore_threshold)
    overall = mot_metrics.combine_summaries([r.metrics for r in per_sequence.values()])
    if protocol == "mot":
        overall.update(hota_fields(hota_lib.combine_hota([r.hota for r in per_sequence.values()])))
    return TrackingReport(protocol, overall, {name: r.metrics for name, r in per_sequence.items()}, notes)

