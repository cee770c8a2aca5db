"""``comotion eval``: score tracking output (``track``) or pose accuracy (``pose``).

Both print a table (one row per sequence, then OVERALL) or, with ``--json``, only the JSON object
``{"overall": {...}, "per_sequence": {"<name>": {...}}}`` (NaN as null).  See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import sys

TRACK_COLUMNS = [
    ("IDF1", "idf1", "percent"), ("IDP", "idp", "percent"), ("IDR", "idr", "percent"),
    ("Rcll", "recall", "percent"), ("Prcn", "precision", "percent"), ("GT", "num_unique_objects", "int"),
    ("MT", "mostly_tracked", "int"), ("PT", "partially_tracked", "int"), ("ML", "mostly_lost", "int"),
    ("FP", "num_false_positives", "int"), ("FN", "num_misses", "int"), ("IDs", "num_switches", "int"),
    ("FM", "num_fragmentations", "int"), ("MOTA", "mota", "percent"), ("MOTP", "motp", ".3f"),
    ("IDt", "num_transfer", "int"), ("IDa", "num_ascend", "int"), ("IDm", "num_migrate", "int"),
]  # fmt: skip
HOTA_COLUMNS = [("HOTA", "hota", "percent"), ("DetA", "deta", "percent"), ("AssA", "assa", "percent")]
POSE_COLUMNS = [
    ("PCKn@0.05", "pck@0.05", ".3f"), ("PCKn@0.1", "pck@0.1", ".3f"), ("MPJPE", "mpjpe", ".1f"),
    ("PA-MPJPE", "pa_mpjpe", ".1f"), ("3DPCK@0.1", "pck3d@0.1", ".3f"), ("people", "num_people", "int"),
    ("matched", "num_matched", "int"),
]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="eval_command", metavar="WHAT", required=True)

    track = sub.add_parser("track", help="tracking metrics of MOT result files (PoseTrack21 layout)")
    track.add_argument("--dataset", required=True, help="PoseTrack21 root (or posetrack_mot/mot/val)")
    track.add_argument("--results", required=True, help="folder with one MOT result file per sequence")
    track.add_argument("--protocol", choices=("posetrack21", "mot"), default="posetrack21",
                       help="posetrack21: corrected PoseTrack21 rules (default); mot: plain MOT + HOTA")  # fmt: skip
    track.add_argument("--ignore-threshold", type=float, default=0.1, metavar="FRACTION",
                       help="posetrack21: a box is in an ignore region when one polygon covers more than this "
                       "fraction of it (default 0.1, as the released evaluation)")  # fmt: skip
    track.add_argument("--json", action="store_true", help="print only a JSON object")

    pose = sub.add_parser("pose", help="pose accuracy (PCKn, MPJPE, PA-MPJPE, 3D-PCK)")
    pose.add_argument("--gt", required=True, help="ground-truth file / clip folder, or a folder of them")
    pose.add_argument(
        "--pred", required=True, help="predictions .npz / results folder, or a folder with one per sequence"
    )
    pose.add_argument("--format", choices=("coco", "posetrack", "3dpw", "synthetic"), default="synthetic",
                      help="ground-truth format (default: synthetic)")  # fmt: skip
    pose.add_argument("--setting", choices=("full", "oracle"), default="full",
                      help="full: tracker output matched to people (default); oracle: best-IoU prediction per person box")  # fmt: skip
    pose.add_argument("--json", action="store_true", help="print only a JSON object")


def run(args: argparse.Namespace) -> int:
    from comotion.errors import InputError
    from comotion.eval.report import Column, results_json, results_table

    if args.eval_command == "track":
        from comotion.eval.tracking import evaluate_tracking

        if not 0.0 <= args.ignore_threshold < 1.0:
            raise InputError(f"--ignore-threshold must be in [0, 1), got {args.ignore_threshold}")
        report = evaluate_tracking(args.dataset, args.results, args.protocol, args.ignore_threshold)
        columns = TRACK_COLUMNS + (HOTA_COLUMNS if args.protocol == "mot" else [])
        if not args.json:
            for note in report.notes:
                print(f"note: {note}", file=sys.stderr)
    else:
        from comotion.eval.pose import evaluate_pose

        report = evaluate_pose(args.gt, args.pred, args.format, args.setting)
        columns = POSE_COLUMNS
    if args.json:
        print(results_json(report.overall, report.per_sequence))
    else:
        print(results_table(report.overall, report.per_sequence, [Column(*c) for c in columns]))
    return 0
