"""``comotion demo``: render a fresh synthetic clip, track it, and score the result.

The demo composes the other commands: the clip is the clip 0 of ``comotion synth --seed S``
with the same ``--frames``, ``--people``, ``--size`` and ``--body-model`` (generator seed
``[S, 0]``), tracking and outputs are
``comotion track``'s (:func:`comotion.commands.track.run_job`), and the scores are
``comotion eval``'s, against the clip's own ground truth.  ``OUTDIR`` receives (docs/demo.md):

* ``clip/``          the synthetic clip (PNG frames, ``gt.npz``, ``meta.json``)
* ``posetrack21/``   the clip as a PoseTrack21-layout dataset (the tracking ground truth)
* ``tracks/``, ``demo.txt``, ``demo.json``, ``motion/``, ``overlay.mp4``, ``done.json``:
  the outputs of ``comotion track`` (docs/outputs.md)
* ``scores.json``    the numbers the demo prints, written last
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
from pathlib import Path

from comotion.errors import InputError

SEQUENCE = "demo"  # the clip's sequence name: the stem of the MOT / PoseTrack files and of the eval
SCORES_NAME = "scores.json"
TRACK_FORMATS = "tracks,mot,posetrack,amass,bvh"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument("-o", "--output", default="demo_output", metavar="OUTDIR", help="output folder")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the clip (default: random; printed so the run can be repeated)"
    )
    parser.add_argument("--frames", type=int, default=48, metavar="T", help="frames in the clip")
    parser.add_argument("--people", default="2-4", metavar="MIN-MAX", help="people in the clip")
    parser.add_argument("--size", type=int, default=256, metavar="PX", help="image width and height in pixels")
    parser.add_argument(
        "--weights", default="default", metavar="NAME|PATH", help="network weights: 'default' or a model file"
    )
    parser.add_argument(
        "--body-model",
        default="anny",
        metavar="anny|PATH",
        help="body model that renders the clip and that the network uses",
    )
    parser.add_argument(
        "--device", default=None, help="torch device for the network (default: cuda if available, else cpu)"
    )
    parser.add_argument(
        "--resolution", type=int, default=None, metavar="PX", help="network input side (default: the weights' own)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads for torch (default: torch's own choice; 1 is much faster on a busy machine)",
    )
    parser.add_argument("--no-overlay", action="store_true", help="do not render overlay.mp4")
    parser.add_argument("--json", action="store_true", help="print only a JSON object of the scores (no progress bars)")


def prepare_output(outdir: Path) -> None:
    """Create ``outdir``, or clear the clip and dataset of an earlier demo run in it.

    A non-empty folder that holds no earlier demo (no ``scores.json``) is refused rather than
    mixed with: the demo deletes what it wrote before, never anything else.
    """
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"output folder {outdir} is a file")
    if outdir.is_dir() and any(outdir.iterdir()):
        if not (outdir / SCORES_NAME).is_file():
            raise InputError(
                f"output folder {outdir} is not empty and holds no earlier demo ({SCORES_NAME}); choose another -o"
            )
        (outdir / SCORES_NAME).unlink()
        for name in ("clip", "posetrack21"):
            shutil.rmtree(outdir / name, ignore_errors=True)
    outdir.mkdir(parents=True, exist_ok=True)


def synth_config(args):
    """The clip's :class:`~comotion.synth.SynthConfig` from ``--frames``, ``--size``, ``--people``."""
    from comotion.commands.synth import parse_people_range
    from comotion.synth import SceneConfig, SynthConfig

    for option, value, low in (("--frames", args.frames, 2), ("--size", args.size, 64)):
        if value < low:
            raise InputError(f"{option} must be at least {low}, got {value}")
    scene = SceneConfig(height=args.size, width=args.size, num_frames=args.frames, people=parse_people_range(args.people))
    return SynthConfig(scene=scene)


def render_clip(args, seed: int, clip_dir: Path, quiet: bool):
    """Render the clip of ``seed`` into ``clip_dir`` and export it as the PoseTrack21 dataset
    ``clip_dir/../posetrack21``; returns the loaded :class:`~comotion.synth.Clip`."""
    from tqdm import tqdm

    from comotion.body import load_body_model
    from comotion.synth import ClipGenerator, export_posetrack, load_clip, write_clip

    generator = ClipGenerator(load_body_model(args.body_model), synth_config(args))
    # The generator renders a clip in one call: the bar shows the stages, one step per frame each.
    with tqdm(total=2 * args.frames, desc="render", unit="frame", disable=quiet, dynamic_ncols=True) as progress:
        generated = generator.generate([seed, 0])
        progress.update(args.frames)
        write_clip(clip_dir, generated.frames, generated.gt, generated.meta)
        clip = load_clip(clip_dir)
        export_posetrack(clip, clip_dir.parent / "posetrack21", SEQUENCE)
        progress.update(args.frames)
    return clip


def add_held_out_arguments(parser: argparse.ArgumentParser) -> None:
    """The clip and run options of the tools that score a model on held-out demo clips
    (tools/tune_tracker.py, tools/probe_update.py, tools/probe_detector.py)."""
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--people", default="2-4")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)


def seed_range(text: str) -> list[int]:
    """``"FIRST-LAST"`` (or one seed) -> the seeds from FIRST to LAST inclusive."""
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def held_out_model(args):
    """The model of a tool's ``weights``, ``device`` and optional ``resolution``, as ``comotion
    track`` loads it (stored tracker settings included, quirks as the reference)."""
    from comotion.commands import track

    namespace = argparse.Namespace(
        weights=args.weights, body_model=None, device=args.device, fixed_quirks=False, resolution=getattr(args, "resolution", None)
    )
    return track.load_model(namespace)


def clip_arguments(args) -> argparse.Namespace:
    """The demo options that render a held-out clip and track it, from a tool's ``frames``,
    ``people``, ``size``, ``weights`` and ``device``."""
    return argparse.Namespace(
        frames=args.frames, people=args.people, size=args.size, body_model="anny", weights=args.weights,
        device=args.device, no_overlay=True,
    )  # fmt: skip


def cached_clip(args, seed: int, root: Path):
    """The clip of ``seed`` in ``root/clip`` with its PoseTrack21 export in ``root/posetrack21``,
    rendered unless an earlier call left it there (tools that score many runs on the same clips).
    The export is written anew each time: it is cheap, and it follows the code (its box
    convention), where the cached frames do not."""
    from comotion.synth import export_posetrack, load_clip

    if (root / "clip" / "meta.json").is_file():
        clip = load_clip(root / "clip")
        shutil.rmtree(root / "posetrack21", ignore_errors=True)
        export_posetrack(clip, root / "posetrack21", SEQUENCE)
        return clip
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return render_clip(args, seed, root / "clip", quiet=True)


def track_arguments(args, clip, outdir: Path, quiet: bool) -> argparse.Namespace:
    """``comotion track``'s options for tracking the clip's frames with its own intrinsics."""
    from comotion.commands import track

    fx, _, cx = (float(v) for v in clip.gt.K[0, 0])
    _, fy, cy = (float(v) for v in clip.gt.K[0, 1])
    argv = [
        str(clip.path / "frames"), "--output", str(outdir), "--weights", str(args.weights),
        "--body-model", args.body_model, "--intrinsics", f"{fx!r},{fy!r},{cx!r},{cy!r}",
        "--fps", repr(float(clip.fps)), "--formats", TRACK_FORMATS,
    ]  # fmt: skip
    if args.device is not None:
        argv += ["--device", args.device]
    if getattr(args, "resolution", None) is not None:
        argv += ["--resolution", str(args.resolution)]
    if not args.no_overlay:
        argv.append("--overlay")
    if quiet:
        argv.append("--quiet")
    parser = argparse.ArgumentParser(prog="comotion track")
    track.add_arguments(parser)
    return parser.parse_args(argv)


def score_run(outdir: Path, clip_dir: Path) -> dict:
    """Tracking (both protocols) and pose scores of the run in ``outdir`` against the clip."""
    from comotion.eval.pose import evaluate_pose
    from comotion.eval.tracking import evaluate_tracking

    dataset = outdir / "posetrack21"
    tracking = {protocol: evaluate_tracking(dataset, outdir, protocol).overall for protocol in ("posetrack21", "mot")}
    pose = evaluate_pose(gt=clip_dir, pred=outdir, fmt="synthetic").overall
    main = tracking["posetrack21"]
    return {
        "mota": main["mota"],
        "idf1": main["idf1"],
        "id_switches": main["num_switches"],
        "gt_boxes": main["num_objects"],
        "mot_protocol": {
            "mota": tracking["mot"]["mota"],
            "idf1": tracking["mot"]["idf1"],
            "id_switches": tracking["mot"]["num_switches"],
            "hota": tracking["mot"]["hota"],
        },
        "mpjpe_mm": pose.get("mpjpe", math.nan),
        "pa_mpjpe_mm": pose.get("pa_mpjpe", math.nan),
        "pck@0.05": pose.get("pck@0.05", math.nan),
        "pck@0.1": pose.get("pck@0.1", math.nan),
        "matched_people": pose["matched_fraction"],
    }


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _millimetres(value) -> str:
    return "n/a" if value is None else f"{value:.0f} mm"


def format_table(report: dict) -> str:
    """The human-readable summary printed at the end of the demo."""
    mot = report["mot_protocol"]
    after = report["tracks_after_cleanup"]
    rows = [
        ("seed", f"{report['seed']}  (repeat: comotion demo --seed {report['seed']})"),
        ("frames", f"{report['frames']} ({report['size']}x{report['size']} px)"),
        ("people", str(report["people"])),
        ("tracks", f"{report['tracks']}" + ("" if after is None else f" ({after} after cleanup)")),
        ("time", f"{report['seconds']:.1f} s tracking, {report['total_seconds']:.1f} s in all"),
        ("fps", f"{report['fps']:.1f}" if report["fps"] else "n/a"),
        ("MOTA", f"{_percent(report['mota'])}  (plain MOT: {_percent(mot['mota'])})"),
        ("IDF1", f"{_percent(report['idf1'])}  (plain MOT: {_percent(mot['idf1'])})"),
        ("ID switches", f"{report['id_switches']}  (plain MOT: {mot['id_switches']})"),
        ("MPJPE", _millimetres(report["mpjpe_mm"])),
        ("PA-MPJPE", _millimetres(report["pa_mpjpe_mm"])),
        ("PCK@0.05", _percent(report["pck@0.05"])),
        ("PCK@0.1", _percent(report["pck@0.1"])),
        ("matched people", _percent(report["matched_people"])),
        ("outputs", report["output"]),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def run(args) -> int:
    import torch

    # Contexts and a restored thread count: the CLI also runs in-process (tests).
    threads = torch.get_num_threads()
    try:
        with torch.no_grad():
            return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args) -> int:
    import torch

    from comotion.commands import track

    started = time.perf_counter()
    seed = random.SystemRandom().randrange(2**31) if args.seed is None else args.seed
    if seed < 0:
        raise InputError(f"--seed must be >= 0, got {seed}")
    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    synth_config(args)  # bad clip options fail before the model loads and the folder is touched
    quiet = args.json
    outdir = Path(args.output)
    # Load the network first: a missing or bad model file fails before any rendering.
    model_args = argparse.Namespace(
        weights=str(args.weights), body_model=args.body_model, device=args.device, fixed_quirks=False,
        resolution=args.resolution,
    )
    model = track.load_model(model_args)
    prepare_output(outdir)
    if not quiet:
        print(f"comotion demo: seed {seed}, {args.frames} frames, {args.people} people, weights {args.weights}")
    clip = render_clip(args, seed, outdir / "clip", quiet)
    track_args = track_arguments(args, clip, outdir, quiet)
    job = track.Job(track_args.input, SEQUENCE, outdir)
    summary = track.run_job(model, job, track_args, track.parse_formats(track_args.formats))
    scores = score_run(outdir, clip.path)
    report = {
        "seed": seed,
        "frames": summary["frames"],
        "size": args.size,
        "people": int(clip.gt.num_persons),
        "tracks": summary["tracks"],
        "tracks_after_cleanup": summary["tracks_after_cleanup"],
        "seconds": summary["seconds"],
        "fps": summary["fps"],
        **scores,
        "total_seconds": round(time.perf_counter() - started, 3),
        "weights": str(args.weights),
        "body_model": args.body_model,
        "output": str(outdir),
    }
    # Plain JSON numbers: NaN (0/0, e.g. no person matched) becomes null, numpy scalars Python ones.
    report = json.loads(json.dumps(report, default=lambda v: v.item()), parse_constant=lambda _: None)
    (outdir / SCORES_NAME).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report) if args.json else format_table(report))
    return 0
