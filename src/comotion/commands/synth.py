"""``comotion synth``: render synthetic multi-person clips with ground truth.

``OUTDIR/clip_NNNNNN/`` holds each clip (frames, ``gt.npz``, ``meta.json``; see
docs/synthetic_data.md) and ``OUTDIR/synth.json`` the run's settings and clip list.  Clip ``k``
depends only on ``--seed`` and ``k``, so any number of workers gives the same files.  With
``--export-posetrack`` the clips are also written as a PoseTrack21-layout dataset under
``OUTDIR/posetrack21/`` that ``comotion eval`` can score a tracker on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from comotion.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument("outdir", metavar="OUTDIR", help="output folder (created; must be empty)")
    parser.add_argument("--clips", type=int, default=10, metavar="N", help="number of clips")
    parser.add_argument("--frames", type=int, default=64, metavar="T", help="frames per clip")
    parser.add_argument("--people", default="3-6", metavar="MIN-MAX", help="people per clip (or per image)")
    parser.add_argument("--size", type=int, default=256, metavar="PX", help="image width and height in pixels")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the motion")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the whole run")
    parser.add_argument(
        "--single-image", action="store_true", help="every frame is an independent scene (stage-1 training data)"
    )
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="parallel worker processes")
    parser.add_argument(
        "--body-model", default="anny-lowres", metavar="anny|anny-lowres|PATH", help="body model to render"
    )
    parser.add_argument("--video", action="store_true", help="store frames.mp4 (H.264) instead of PNG frames")
    parser.add_argument(
        "--export-posetrack", action="store_true", help="also write OUTDIR/posetrack21/ (PoseTrack21 MOT layout)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_people_range(text: str) -> tuple[int, int]:
    try:
        low, _, high = text.partition("-")
        people = (int(low), int(high or low))
    except ValueError:
        raise InputError(f"--people: expected MIN-MAX such as 3-6, got {text!r}") from None
    if people[0] < 0 or people[1] < people[0]:
        raise InputError(f"--people: need 0 <= MIN <= MAX, got {text!r}")
    return people


def _config(args):
    from comotion.synth import SceneConfig, SynthConfig
    from comotion.synth.motion import MotionConfig

    for option, value, low in (
        ("--clips", args.clips, 1),
        ("--frames", args.frames, 1),
        ("--size", args.size, 16),
        ("--workers", args.workers, 1),
    ):
        if value < low:
            raise InputError(f"{option} must be at least {low}, got {value}")
    if args.single_image and args.export_posetrack:
        raise InputError("--export-posetrack needs video clips (leave out --single-image)")
    if args.fps <= 0:
        raise InputError(f"--fps must be positive, got {args.fps}")
    scene = SceneConfig(
        height=args.size,
        width=args.size,
        num_frames=args.frames,
        people=parse_people_range(args.people),
        motion=MotionConfig(fps=args.fps),
    )
    return SynthConfig(scene=scene, single_image=args.single_image)


_WORKER: dict = {}


def _init_worker(body_model: str, config) -> None:
    import torch

    from comotion.body import load_body_model
    from comotion.synth import ClipGenerator

    torch.set_num_threads(1)
    _WORKER["generator"] = ClipGenerator(load_body_model(body_model), config)


def _make_clip(task: tuple[int, int, str, bool]) -> str:
    from comotion.synth import write_clip

    seed, index, outdir, video = task
    clip = _WORKER["generator"].generate([seed, index])
    name = f"clip_{index:06d}"
    write_clip(Path(outdir) / name, clip.frames, clip.gt, clip.meta, video=video)
    return name


def run(args) -> int:
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    from comotion.body import load_body_model

    config = _config(args)
    outdir = Path(args.outdir)
    if outdir.exists() and (not outdir.is_dir() or any(outdir.iterdir())):
        raise InputError(f"output folder {outdir} exists and is not empty")
    load_body_model(args.body_model)  # fail early, in this process, on a bad --body-model
    outdir.mkdir(parents=True, exist_ok=True)
    tasks = [(args.seed, k, str(outdir), args.video) for k in range(args.clips)]
    unit = "image" if args.single_image else "frame"
    progress = tqdm(total=args.clips * args.frames, unit=unit, disable=args.quiet, dynamic_ncols=True, desc="synth")
    names = []
    if args.workers == 1:
        _init_worker(args.body_model, config)
        for task in tasks:
            names.append(_make_clip(task))
            progress.update(args.frames)
    else:
        with ProcessPoolExecutor(args.workers, initializer=_init_worker, initargs=(args.body_model, config)) as pool:
            for name in pool.map(_make_clip, tasks):
                names.append(name)
                progress.update(args.frames)
    progress.close()

    settings = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("quiet", "workers")}
    (outdir / "synth.json").write_text(json.dumps({"settings": settings, "clips": names}, indent=1) + "\n")
    if args.export_posetrack:
        from comotion.synth import export_posetrack, load_clip

        for name in tqdm(names, desc="export", disable=args.quiet, dynamic_ncols=True):
            export_posetrack(load_clip(outdir / name), outdir / "posetrack21", name)
    print(f"wrote {len(names)} clip(s) to {outdir}")
    return 0
