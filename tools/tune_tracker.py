"""Tune the tracker's thresholds for a model on held-out synthetic clips, and store the best.

The track-management thresholds (docs/tracking.md) are the reference's, chosen for the official
network at 512 px.  A smaller or less precise network needs others: its keypoints agree less
with a detection after one update step (``init_match_thr``), its confidences are calibrated
differently (``init_conf_thr``), its duplicates are further apart (``nms_std``).  This script
scores a grid of settings with ``comotion demo``'s clip, tracking and scoring code on clips of
seeds the demo does not use by default (1000 and up), prints MOTA / IDF1 per setting (pooled over
the clips: counts summed, as the OVERALL row of the MOT challenge, so a clip with 15 boxes weighs
less than one with 90; ``--per-clip`` also prints each clip's), and with
``--write`` saves the model with the best setting stored in it (``CoMotion.tracker_settings``),
so ``comotion track``/``demo`` and ``model.tracker()`` start from it.

    python tools/tune_tracker.py --weights runs/tiny/stage3/model.safetensors \\
        --grid init_conf_thr=0.3,0.5 --grid init_match_thr=0.5,0.75 --write model.safetensors
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import sys
from pathlib import Path

import torch

from comotion.commands import demo, track
from comotion.errors import report_errors
from comotion.eval.mot_metrics import combine_summaries
from comotion.eval.tracking import evaluate_tracking
from comotion.tracking.config import parse_tracker_settings


def grid_settings(grid: list[str]) -> list[list[str]]:
    """``["a=1,2", "b=3"]`` -> ``[["a=1", "b=3"], ["a=2", "b=3"]]`` (every combination)."""
    axes = []
    for item in grid:
        name, _, values = item.partition("=")
        axes.append([f"{name}={value}" for value in values.split(",")])
    return [list(combo) for combo in itertools.product(*axes)]


def score_setting(model, args, settings: list[str]) -> tuple[list[dict], list[dict]]:
    """Demo scores and PoseTrack21-protocol tracking summaries of each held-out clip tracked with ``settings``."""
    scores, summaries = [], []
    clip_args = demo.clip_arguments(args)
    for seed in args.seeds:
        root = Path(args.workdir) / f"seed{seed}"
        clip = demo.cached_clip(clip_args, seed, root)
        out = root / "run"
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(root / "posetrack21", out / "posetrack21")
        track_args = demo.track_arguments(clip_args, clip, out, quiet=True)
        track_args.tracker_setting = list(settings)
        track_args.cleanup = args.cleanup
        job = track.Job(track_args.input, demo.SEQUENCE, out)
        track.run_job(model, job, track_args, track.parse_formats("tracks,mot"))
        scores.append(demo.score_run(out, clip.path))
        summaries.append(evaluate_tracking(out / "posetrack21", out, "posetrack21").overall)
        if args.per_clip:
            print(f"  seed {seed}: MOTA {scores[-1]['mota']:6.3f}  IDF1 {scores[-1]['idf1']:6.3f}  "
                  f"GT boxes {scores[-1]['gt_boxes']}", flush=True)  # fmt: skip
    return scores, summaries


@report_errors
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="default", help="model file (or 'default')")
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2", help="values to try (repeat)")
    parser.add_argument("--seeds", default="1000-1007", help="held-out clip seeds, FIRST-LAST")
    demo.add_held_out_arguments(parser)
    parser.add_argument("--resolution", type=int, default=None, metavar="PX", help="network input side (stored by --write)")
    parser.add_argument(
        "--cleanup", action=argparse.BooleanOptionalAction, default=True, help="score the cleaned output (as the demo)"
    )
    parser.add_argument("--workdir", default="runs/tune", help="clips and runs go here (clips are reused)")
    parser.add_argument("--per-clip", action="store_true", help="also print each clip's MOTA / IDF1")
    parser.add_argument("--write", metavar="PATH", help="save the model with the best setting stored in it")
    parser.add_argument("--half", action="store_true", help="with --write: store the weights as float16")
    args = parser.parse_args(argv)
    args.seeds = demo.seed_range(args.seeds)
    torch.set_num_threads(args.threads)
    model = demo.held_out_model(args)
    candidates = grid_settings(args.grid) or [[]]
    for settings in candidates:
        parse_tracker_settings(settings)
    results = []
    for settings in candidates:
        scores, summaries = score_setting(model, args, settings)
        pooled = combine_summaries(summaries)
        mota, idf1 = pooled["mota"], pooled["idf1"]
        mpjpe = [s["mpjpe_mm"] for s in scores if not math.isnan(s["mpjpe_mm"])]
        results.append((mota + idf1, settings, mota, idf1))
        print(
            f"MOTA {mota:6.3f}  IDF1 {idf1:6.3f}  MPJPE {sum(mpjpe) / max(len(mpjpe), 1):5.0f} mm  "
            f"ID sw {pooled['num_switches']:3d}  misses {pooled['num_misses']:4d}  FP {pooled['num_false_positives']:4d}  "
            f"of {pooled['num_objects']} GT boxes  {' '.join(settings) or '(stored/defaults)'}",
            flush=True,
        )
    _, best, mota, idf1 = max(results, key=lambda r: r[0])
    print(f"best: {' '.join(best) or '(stored/defaults)'}  MOTA {mota:.3f} IDF1 {idf1:.3f}")
    if args.write:
        model.tracker_settings = {**model.tracker_settings, **parse_tracker_settings(best)}
        path = model.save(args.write, half=args.half)
        print(f"model with tracker settings {json.dumps(model.tracker_settings)} written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
