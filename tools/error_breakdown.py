"""Where do a model's MOT errors come from?  A breakdown of misses and false positives.

Reads the runs ``tools/tune_tracker.py`` leaves in ``--workdir`` (per seed: the clip's
PoseTrack21 ground truth in ``seed<N>/posetrack21`` and the scored run in ``seed<N>/run``, i.e.
its MOT boxes and its per-frame tracks and detections) and sorts, frame by frame, every error of
the IoU-0.5 pairing of ground-truth and predicted boxes:

* a **miss** is *boxed off* when some output box overlaps the person by IoU above 0.2 (found,
  but drawn at the wrong size or place); otherwise *not found*, and then, from the run's own
  records (keypoint boxes at IoU above 0.3, tighter than the mesh boxes of the output): *tracked,
  removed by cleanup* (a raw track was there), *detected, not started* (a detection at or above
  the tracker's ``init_conf_thr`` was there, but no track started from it: it failed the
  self-consistency test or a nearby track explained it), *detected, low confidence*, or *not
  detected*;
* a **false positive** is *boxed off* when it overlaps an unpaired person by IoU above 0.2 (the
  other half of a boxed-off miss), a *duplicate* when it overlaps a paired person, else a
  *phantom* (nobody there: background or an occluder taken for a person).

Also printed: the pairing's recall by ground-truth box height, by the share of the person left
visible by other people and occluders, and by the share of the body cut off by the image border
(the last two from the clip's own ground truth, ``seed<N>/clip``).  The pairing is per frame and
ignores ignore regions and identities, so the totals differ slightly from the evaluation's
(``comotion eval``, ``tools/tune_tracker.py``).

    python tools/tune_tracker.py --workdir runs/eval16 --seeds 2000-2015
    python tools/error_breakdown.py --workdir runs/eval16 --seeds 2000-2015
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from comotion.commands import demo
from comotion.errors import InputError, report_errors
from comotion.eval.accumulator import min_cost_pairs
from comotion.eval.tracking import IOU_THRESHOLD, box_iou
from comotion.eval.tracking_data import find_sequence_root, read_result_file, read_sequence
from comotion.geometry.camera import boxes_from_points
from comotion.io.results import load_tracks
from comotion.synth.clip import load_clip
from comotion.tracking.config import TrackerConfig

OVERLAP_IOU = 0.2  # "overlaps": above this a box is about the same person
RECORD_IOU = 0.3  # a raw track's or detection's keypoint box covers the person
# Recall tables: name, bin edges, unit of the labels.
HEIGHT_BINS = (0, 40, 80, 140, np.inf)  # ground-truth box height, pixels
VISIBLE_BINS = (0.0, 0.5, 0.8, 0.95, np.inf)  # visible pixels / pixels the person would cover alone
CUT_OFF_BINS = (0.0, 0.05, 0.3, np.inf)  # share of the mesh vertices outside the image
RECALL_TABLES = (
    ("box height", HEIGHT_BINS, " px"),
    ("visible fraction", VISIBLE_BINS, ""),
    ("border cut-off", CUT_OFF_BINS, ""),
)
MISS_CAUSES = (
    "boxed off",
    "tracked, removed by cleanup",
    "detected, not started",
    "detected, low confidence",
    "not detected",
)
FALSE_POSITIVE_KINDS = ("boxed off", "duplicate", "phantom")


def pair_boxes(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame's IoU-0.5 pairing of corner boxes ``gt (G, 4)`` and ``pred (P, 4)`` pixels.

    Returns ``iou (G, P)`` and bool ``gt_paired (G,)``, ``pred_paired (P,)`` (pairs maximise the
    summed IoU among pairs at or above 0.5, as the MOT evaluation pairs boxes).
    """
    iou = box_iou(gt, pred).reshape(len(gt), len(pred))
    gt_paired, pred_paired = np.zeros(len(gt), bool), np.zeros(len(pred), bool)
    if iou.size:
        rows, cols = min_cost_pairs(np.where(iou >= IOU_THRESHOLD, 1.0 - iou, np.nan))
        gt_paired[rows], pred_paired[cols] = True, True
    return iou, gt_paired, pred_paired


def false_positive_kinds(iou: np.ndarray, gt_paired: np.ndarray, pred_paired: np.ndarray) -> list[str]:
    """Kind of each unpaired prediction (see the module docstring), in prediction order."""
    kinds = []
    for p in np.flatnonzero(~pred_paired):
        overlaps = iou[:, p] > OVERLAP_IOU
        if (overlaps & ~gt_paired).any():
            kinds.append("boxed off")
        elif overlaps.any():
            kinds.append("duplicate")
        else:
            kinds.append("phantom")
    return kinds


def miss_cause(
    person: np.ndarray,
    outputs: np.ndarray,
    raw_tracks: np.ndarray,
    detections: np.ndarray,
    detection_conf: np.ndarray,
    init_conf_thr: float,
) -> str:
    """Why an unpaired ground-truth box ``person (4,)`` was missed.

    ``outputs (P, 4)``: the frame's output boxes; ``raw_tracks (T, 4)``, ``detections (D, 4)``:
    keypoint boxes of the tracker's tracks before cleanup and of its detections, with
    ``detection_conf (D,)`` in [0, 1]; corner boxes in pixels.
    """
    if len(outputs) and box_iou(person, outputs).max() > OVERLAP_IOU:
        return "boxed off"
    if len(raw_tracks) and box_iou(person, raw_tracks).max() > RECORD_IOU:
        return "tracked, removed by cleanup"
    covering = detection_conf[box_iou(person, detections).reshape(-1) > RECORD_IOU] if len(detections) else []
    if len(covering) == 0:
        return "not detected"
    return "detected, not started" if max(covering) >= init_conf_thr else "detected, low confidence"


def keypoint_boxes(keypoints: np.ndarray) -> np.ndarray:
    """Corner boxes ``(N, 4)`` ``[x1, y1, x2, y2]`` of keypoints ``(N, K, 2)`` pixels."""
    return boxes_from_points(torch.from_numpy(keypoints)).reshape(-1, 4).numpy()


def recall_counts(values: np.ndarray, paired: np.ndarray, bins: tuple) -> np.ndarray:
    """``(len(bins) - 1, 2)`` [paired, total] counts of people by ``values (G,)`` binned at ``bins``."""
    counts = np.zeros((len(bins) - 1, 2), np.int64)
    index = np.clip(np.digitize(values, bins) - 1, 0, len(bins) - 2)
    np.add.at(counts, (index, 0), paired)
    np.add.at(counts, (index, 1), 1)
    return counts


def empty_recall() -> dict[str, np.ndarray]:
    """Zero [paired, total] counts for every table of ``RECALL_TABLES``."""
    return {name: np.zeros((len(bins) - 1, 2), np.int64) for name, bins, _ in RECALL_TABLES}


def breakdown_run(clip_root: Path) -> tuple[Counter, Counter, dict[str, np.ndarray]]:
    """Miss causes, false-positive kinds and the recall counts of each of ``RECALL_TABLES``
    (:func:`recall_counts`) of one ``seed<N>`` folder."""
    gt_root = find_sequence_root(clip_root / "posetrack21")
    sequence = read_sequence(gt_root, demo.SEQUENCE)
    clip = load_clip(clip_root / "clip").gt
    column = {int(person): index for index, person in enumerate(clip.ids)}
    run = clip_root / "run"
    outputs = read_result_file(run / f"{demo.SEQUENCE}.txt", sequence.num_images)
    records = load_tracks(run, fields=["keypoints_2d"])
    init_conf_thr = TrackerConfig.recorded_in(records.header).init_conf_thr
    detections = records.detections
    misses, false_positives = Counter(), Counter()
    recall = empty_recall()
    for image, (gt, pred) in enumerate(zip(sequence.gt, outputs)):
        iou, gt_paired, pred_paired = pair_boxes(gt.boxes, pred.boxes)
        false_positives.update(false_positive_kinds(iou, gt_paired, pred_paired))
        people = [column[int(person)] for person in gt.ids]
        values = {
            "box height": gt.boxes[:, 3] - gt.boxes[:, 1],
            "visible fraction": clip.visible_fraction[image, people],
            "border cut-off": clip.truncation[image, people],
        }
        for name, bins, _ in RECALL_TABLES:
            recall[name] += recall_counts(values[name], gt_paired, bins)
        if gt_paired.all():
            continue
        raw = keypoint_boxes(records.keypoints_2d[records.frame_index == image])
        in_frame = detections.frame_index == image
        detected = keypoint_boxes(detections.keypoints_2d[in_frame])
        conf = 1.0 / (1.0 + np.exp(-detections.conf_logit[in_frame].astype(np.float64)))
        for person in gt.boxes[~gt_paired]:
            misses[miss_cause(person, pred.boxes, raw, detected, conf, init_conf_thr)] += 1
    return misses, false_positives, recall


def format_report(misses: Counter, false_positives: Counter, recall: dict[str, np.ndarray]) -> str:
    counts = recall[RECALL_TABLES[0][0]]
    lines = [f"ground-truth boxes {int(counts[:, 1].sum())}, paired {int(counts[:, 0].sum())}"]
    lines.append(f"misses {sum(misses.values())}:")
    lines += [f"  {cause:<30} {misses[cause]:5d}" for cause in MISS_CAUSES]
    lines.append(f"false positives {sum(false_positives.values())}:")
    lines += [f"  {kind:<30} {false_positives[kind]:5d}" for kind in FALSE_POSITIVE_KINDS]
    for name, bins, unit in RECALL_TABLES:
        lines.append(f"recall by {name}:")
        for (low, high), (paired, count) in zip(zip(bins[:-1], bins[1:]), recall[name]):
            label = f"{low:g}-{high:g}{unit}" if np.isfinite(high) else f">= {low:g}{unit}"
            share = f"{paired / count:.2f}" if count else "  - "
            lines.append(f"  {label:<12} {share}  of {count}")
    return "\n".join(lines)


@report_errors
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True, help="tools/tune_tracker.py's --workdir")
    parser.add_argument("--seeds", required=True, help="clip seeds, FIRST-LAST")
    args = parser.parse_args(argv)
    misses, false_positives = Counter(), Counter()
    recall = empty_recall()
    for seed in demo.seed_range(args.seeds):
        clip_root = Path(args.workdir) / f"seed{seed}"
        if not (clip_root / "run").is_dir():
            raise InputError(f"{clip_root}: no scored run (run tools/tune_tracker.py --workdir {args.workdir} first)")
        clip_misses, clip_false_positives, clip_recall = breakdown_run(clip_root)
        misses += clip_misses
        false_positives += clip_false_positives
        for name in recall:
            recall[name] += clip_recall[name]
    print(format_report(misses, false_positives, recall))
    return 0


if __name__ == "__main__":
    sys.exit(main())
