"""How precise is the detector, per person, on synthetic clips with ground truth?

Under ``snap_to_detections`` the tracker's boxes are its detections, so MOT scores follow the
detector's precision.  For every ``--every``-th frame of each clip, every annotated person (as
in the clip's PoseTrack21 export) is paired with the selected detection (the tracker's NMS,
``--conf`` confidence) whose 27 keypoints are closest on average, and with the closest of *all*
network candidates (an oracle selection).  Printed, overall and by the person's height:

* ``err``: mean keypoint distance of the paired detection / the person's keypoint height
  (``oracle``: the same for the closest candidate: if it is far below ``err``, selection loses
  accuracy the network has);
* ``IoU>=.5``: share of people whose detection's keypoint box overlaps theirs by IoU 0.5 or more
  (the evaluation's pairing threshold, on tight keypoint boxes);
* ``depth``: median ratio of detected to true pelvis depth (< 1: people placed too near, so
  drawn too large);
* ``width``, ``height``: median log ratio of the detection's keypoint box side to the person's
  (< 0: too narrow / too short; a systematic bias the keypoint error hides, e.g. limbs pulled
  towards the body).

Held-out clips by seed (rendered as ``comotion demo`` renders them, cached in ``--workdir``) or
any clip folders, e.g. training data: the same numbers on training and fresh clips mean the
network underfits rather than overfits.

    python tools/probe_detector.py --seeds 2000-2015 --workdir runs/eval16
    python tools/probe_detector.py --clips runs/data/synth_images/clip_0000{00..39} --every 1
    python tools/probe_detector.py --seeds 2000-2015 --workdir runs/eval16 --resolution 384
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from comotion.commands import demo
from comotion.errors import report_errors
from comotion.eval.tracking import IOU_THRESHOLD, box_iou
from comotion.geometry.camera import boxes_from_points
from comotion.synth import load_clip
from comotion.synth.clip import annotated_people

HEIGHT_BINS = (0, 40, 80, 140, np.inf)  # keypoint height of the person, image pixels


def relative_errors(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean keypoint distance of each of ``predicted (N, K, 2)`` to ``target (K, 2)``, divided by
    the target's keypoint height (pixels / pixels)."""
    height = max(float(np.ptp(target[:, 1])), 1.0)
    return np.linalg.norm(predicted - target, axis=-1).mean(-1) / height


def log_side_ratios(predicted_box: np.ndarray, target_box: np.ndarray) -> tuple[float, float]:
    """``(log width ratio, log height ratio)`` of corner boxes ``[x1, y1, x2, y2]`` (sides at least 1 px)."""
    predicted = np.maximum(predicted_box[2:] - predicted_box[:2], 1.0)
    target = np.maximum(target_box[2:] - target_box[:2], 1.0)
    width, height = np.log(predicted / target)
    return float(width), float(height)


def person_records(model, clip, every: int, conf_thr: float) -> np.ndarray:
    """One row per (probed frame, annotated person): ``[height px, err, oracle err, IoU, depth ratio,
    log width ratio, log height ratio]`` (NaN error, IoU 0 and NaN depth and ratios where the
    frame has no detection)."""
    gt = clip.gt
    annotated = annotated_people(gt)
    rows = []
    for t, frame in enumerate(clip.frames()):
        if t % every:
            continue
        prepared = model.prepare(torch.from_numpy(frame.copy()).permute(2, 0, 1), torch.as_tensor(gt.K[t], dtype=torch.float32))
        detections, _ = model.detect(prepared, conf_thr=conf_thr)
        candidates = model.candidates(prepared)
        predicted = detections.keypoints_2d.cpu().numpy()
        all_2d = candidates.keypoints_2d.cpu().numpy()
        depth = detections.keypoints_3d[:, 0, 2].cpu().numpy()
        for person in np.flatnonzero(annotated[t]):
            target = gt.keypoints_2d[t, person]
            height = float(np.ptp(target[:, 1]))
            oracle = float(relative_errors(all_2d, target).min())
            if len(predicted) == 0:
                rows.append([height, np.nan, oracle, 0.0, np.nan, np.nan, np.nan])
                continue
            errors = relative_errors(predicted, target)
            best = int(errors.argmin())
            target_box, predicted_box = (
                boxes_from_points(torch.from_numpy(points)).flatten(-2).numpy() for points in (target, predicted[best])
            )
            iou = float(box_iou(target_box[None], predicted_box[None])[0, 0])
            depth_ratio = depth[best] / gt.keypoints_3d[t, person, 0, 2]
            rows.append([height, errors[best], oracle, iou, depth_ratio, *log_side_ratios(predicted_box, target_box)])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 7)


def summary_line(records: np.ndarray) -> str:
    """``n``, median ``err`` and ``oracle``, share with IoU >= 0.5, median depth ratio and log box
    side ratios."""
    if len(records) == 0:
        return "n    0"
    height, error, oracle, iou, depth, width_ratio, height_ratio = records.T
    return (
        f"n {len(records):4d}  err {_median(error):5.3f}  "
        f"oracle {np.median(oracle):5.3f}  IoU>=.5 {np.mean(iou >= IOU_THRESHOLD):4.2f}  "
        f"depth {_median(depth):4.2f}  width {_median(width_ratio):+5.2f}  height {_median(height_ratio):+5.2f}"
    )


def _median(values: np.ndarray) -> float:
    """Median of the finite values (NaN if there are none)."""
    return float(np.nanmedian(values)) if np.isfinite(values).any() else np.nan


@report_errors
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="default", help="model file (or 'default')")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--seeds", default="2000-2015", help="held-out clip seeds, FIRST-LAST")
    source.add_argument("--clips", nargs="+", metavar="DIR", help="clip folders instead (e.g. training data)")
    parser.add_argument("--every", type=int, default=6, help="probe every N-th frame")
    parser.add_argument("--conf", type=float, default=0.5, help="confidence threshold of the selected detections")
    parser.add_argument("--resolution", type=int, default=None, metavar="PX", help="network input side")
    demo.add_held_out_arguments(parser)
    parser.add_argument("--workdir", default="runs/tune", help="held-out clips go here (shared with tune_tracker.py, reused)")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be >= 1")
    torch.set_num_threads(args.threads)
    model = demo.held_out_model(args)
    if args.clips:
        clips = [load_clip(path) for path in args.clips]
    else:
        clip_args = demo.clip_arguments(args)
        clips = [demo.cached_clip(clip_args, seed, Path(args.workdir) / f"seed{seed}") for seed in demo.seed_range(args.seeds)]
    records = np.concatenate([person_records(model, clip, args.every, args.conf) for clip in clips])
    print(f"all people        {summary_line(records)}")
    for low, high in zip(HEIGHT_BINS[:-1], HEIGHT_BINS[1:]):
        inside = (records[:, 0] >= low) & (records[:, 0] < high)
        print(f"height {low:3.0f}-{high:<4.0f} px {summary_line(records[inside])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
