"""``comotion track``: track every person in a video, image folder, camera or stream.

Per input, the output folder receives (see docs/outputs.md):

* ``tracks/``       per-frame, per-track results, streamed while running (``comotion.io.load_tracks``)
* ``<stem>.txt``    MOT-challenge boxes (streamed online; replaced by the cleaned tracks at the end)
* ``<stem>.json``   PoseTrack-style keypoints
* ``motion/``       per-track AMASS ``.npz`` and/or BVH files
* ``overlay.mp4``   optional rendering
* ``done.json``     summary, written last: a batch rerun skips inputs that have it

Many inputs (a list file, or a folder with ``--batch``) are split over processes by
``--shard RANK/WORLD`` or the ``RANK``/``WORLD_SIZE`` variables that ``torchrun`` sets.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, is_dataclass, replace
from pathlib import Path

from comotion.errors import ComotionError, InputError

FORMATS = ("tracks", "mot", "posetrack", "amass", "bvh")
DEFAULT_FORMATS = "tracks,mot,posetrack"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default only when it says something (not for None, False or when the
    help text already explains the default)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--weights``, ``--body-model`` and ``--device``: the options :func:`load_model` reads."""
    parser.add_argument(
        "--weights",
        default="default",
        metavar="NAME|PATH",
        help="network weights: a built-in name or a checkpoint path",
    )
    parser.add_argument(
        "--body-model",
        default=None,
        metavar="anny|PATH",
        help="body model: 'anny' (free, built in) or a path to a SMPL neutral .pkl/.npz; default: the weights' own",
    )
    parser.add_argument(
        "--device", default=None, help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if available)"
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=None,
        metavar="PX",
        help="side of the square network input (a multiple of 128 for the built-in layouts); default: the weights' own",
    )


def add_camera_arguments(parser: argparse.ArgumentParser) -> None:
    """``--intrinsics`` or ``--fov``: the options ``Intrinsics.parse`` reads."""
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument(
        "--intrinsics",
        default=None,
        metavar="FX,FY,CX,CY",
        help="camera intrinsics in pixels (default: f = 2 max(H, W), centred)",
    )
    camera.add_argument(
        "--fov",
        type=float,
        default=None,
        metavar="DEG",
        help="horizontal field of view in degrees instead of --intrinsics",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = HelpFormatter
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="video file (mp4, mov, avi, mkv, webm, ...), folder of images, camera index (0) or stream URL "
        "(rtsp://, http://); or a .txt file listing one video per line; or, with --batch, a folder of videos",
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if missing)")
    add_model_arguments(parser)
    frames = parser.add_argument_group("frame selection")
    frames.add_argument("--start", type=int, default=0, metavar="N", help="first source frame to process")
    frames.add_argument("--max-frames", type=int, default=None, metavar="N", help="process at most N frames")
    frames.add_argument("--stride", type=int, default=1, metavar="N", help="process every N-th frame")
    frames.add_argument(
        "--fps", type=float, default=None, help="frame rate of an image folder (videos and streams report their own)"
    )
    add_camera_arguments(parser)
    out = parser.add_argument_group("outputs")
    out.add_argument(
        "--formats",
        default=DEFAULT_FORMATS,
        metavar="LIST",
        help=f"comma-separated outputs among {','.join(FORMATS)} (tracks are always written)",
    )
    out.add_argument("--overlay", action="store_true", help="also render overlay.mp4 (skeletons, meshes, top view)")
    out.add_argument(
        "--overlay-style", choices=("mesh", "skeleton"), default="mesh", help="what the overlay draws on people"
    )
    out.add_argument(
        "--bvh-single-file", action="store_true", help="write all tracks into one multi-root motion/tracks.bvh"
    )
    out.add_argument("--bvh-scale", type=float, default=1.0, help="BVH length unit per metre (100 = centimetres)")
    out.add_argument(
        "--cleanup",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the run, keep only tracks that agree with detections and trim their ends (the reference's "
        "offline post-processing) for the MOT, PoseTrack and motion files; tracks/ always keeps the online results",
    )
    out.add_argument(
        "--flush-every", type=int, default=100, metavar="N", help="write results to disk at least every N frames"
    )
    parser.add_argument(
        "--tracker-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a tracker threshold (a TrackerConfig field, e.g. init_conf_thr=0.5; repeatable); applied over "
        "the reference defaults and the settings stored with the weights",
    )
    parser.add_argument(
        "--fixed-quirks",
        action="store_true",
        help="fix the reference's known quirks (tracker, cleanup and MOT conventions) instead of reproducing them",
    )
    batch = parser.add_argument_group("batch processing")
    batch.add_argument(
        "--batch", action="store_true", help="INPUT is a folder of videos: process each into OUTDIR/<stem>/"
    )
    batch.add_argument(
        "--shard",
        default=None,
        metavar="RANK/WORLD",
        help="process only inputs RANK, RANK+WORLD, ... (default: $RANK/$WORLD_SIZE under torchrun, else all)",
    )
    batch.add_argument("--overwrite", action="store_true", help="in batch mode, redo inputs whose done.json exists")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


# ----------------------------------------------------------------------------------------------
# Inputs, shards, output folders


@dataclass(frozen=True)
class Job:
    """One input and where its outputs go."""

    spec: str
    stem: str
    outdir: Path


def input_stem(spec: str) -> str:
    """A file-name-safe name for an input: the file stem, ``camera0`` or the stream's last path part."""
    if spec.isdigit():
        return f"camera{spec}"
    name = Path(spec.rstrip("/")).stem if "://" not in spec else spec.split("://", 1)[1].rstrip("/").split("/")[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "stream"


def read_list_file(path: Path) -> list[str]:
    """Video paths listed one per line (blank lines and ``#`` comments skipped), relative to the list."""
    entries = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entry = Path(line).expanduser()
            entries.append(
                line if "://" in line or line.isdigit() else str(entry if entry.is_absolute() else path.parent / entry)
            )
    if not entries:
        raise InputError(f"{path}: list file names no inputs")
    return entries


def list_jobs(spec: str, outdir: Path, batch: bool) -> tuple[list[Job], bool]:
    """The jobs for ``spec`` and whether this is a batch (one sub-folder per input)."""
    from comotion.io.sources import VIDEO_SUFFIXES, natural_key

    path = Path(spec)
    if batch:
        if not path.is_dir():
            raise InputError(f"{spec}: --batch needs a folder of videos")
        videos = sorted((p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES), key=natural_key)
        if not videos:
            raise InputError(f"{spec}: folder has no videos ({', '.join(VIDEO_SUFFIXES)})")
        specs = [str(p) for p in videos]
    elif path.suffix.lower() == ".txt" and path.is_file():
        specs = read_list_file(path)
    else:
        return [Job(spec, input_stem(spec), outdir)], False
    jobs = [Job(s, input_stem(s), outdir / input_stem(s)) for s in specs]
    seen: dict[str, str] = {}
    for job in jobs:
        if job.stem in seen:
            raise InputError(f"inputs {seen[job.stem]} and {job.spec} would share the output folder {job.outdir}")
        seen[job.stem] = job.spec
    return jobs, True


def parse_shard(text: str | None, environ=os.environ) -> tuple[int, int]:
    """``(rank, world)`` from ``RANK/WORLD``, else torchrun's ``RANK``/``WORLD_SIZE``, else ``(0, 1)``."""
    if text is None:
        if "WORLD_SIZE" not in environ:
            return 0, 1
        text = f"{environ.get('RANK', '0')}/{environ['WORLD_SIZE']}"
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise InputError(f"shard must be RANK/WORLD with 0 <= RANK < WORLD, got {text!r}")
    return int(match[1]), int(match[2])


def parse_formats(text: str) -> set[str]:
    formats = {f.strip() for f in text.split(",") if f.strip()}
    unknown = formats - set(FORMATS)
    if unknown:
        raise InputError(f"unknown output format(s) {', '.join(sorted(unknown))}; choose from {','.join(FORMATS)}")
    return formats


def resolve_device(name: str | None, environ=os.environ) -> str:
    """The torch device; under torchrun a bare ``cuda`` becomes ``cuda:$LOCAL_RANK``."""
    import torch

    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and "LOCAL_RANK" in environ:
        name = f"cuda:{int(environ['LOCAL_RANK'])}"
    return name


# ----------------------------------------------------------------------------------------------
# Tracking one input


def load_model(args):
    """The network and body model named by ``--weights``/``--body-model``/``--device``, with the
    network-side quirk fixes (transitive NMS, resolution-independent similarity) if asked."""
    from comotion.model import CoMotion, with_fixes

    model = CoMotion.from_pretrained(args.weights, body_model=args.body_model, device=resolve_device(args.device))
    if args.fixed_quirks:
        model.config = with_fixes(model.config)
    if getattr(args, "resolution", None) is not None:
        model.set_input_resolution(args.resolution)
    return model


def tracker_config(model, args):
    """The tracker's configuration: the reference's defaults (or its fixed-quirks variant), then
    the settings stored with the weights, then ``--tracker-setting`` options."""
    from comotion.tracking.config import parse_tracker_settings

    config = model.tracker_config(args.fixed_quirks)
    settings = parse_tracker_settings(args.tracker_setting)
    return replace(config, **settings) if settings else config


def _numpy(tensor):
    return tensor.detach().cpu().numpy()


def track_rows(tracks, body, K, with_coco: bool, box_image_size: tuple[int, int] | None, clamp: str):
    """Rows for the results file from a frame's tracks, plus their mesh boxes ``(N, 2, 2)`` pixels
    for an image of ``box_image_size`` (height, width), or ``None`` when that is ``None``."""
    import numpy as np
    import torch

    from comotion.geometry.camera import project_points
    from comotion.io.mot import BOX_VERTEX_STRIDE, vertex_boxes

    num = int(tracks.ids.shape[0])
    rows = {
        "track_id": _numpy(tracks.ids).astype(np.int64).reshape(-1),
        "betas": _numpy(tracks.betas),
        "pose": _numpy(tracks.pose),
        "trans": _numpy(tracks.trans),
        "keypoints_3d": _numpy(tracks.keypoints_3d),
        "keypoints_2d": _numpy(tracks.keypoints_2d),
        "confidence": _numpy(tracks.confidence),
    }
    want_boxes = box_image_size is not None
    boxes = None
    if num and (with_coco or want_boxes):
        with torch.no_grad():
            out = body(
                tracks.betas,
                tracks.pose,
                tracks.trans,
                coco=with_coco,
                vertices=BOX_VERTEX_STRIDE if want_boxes else None,
            )
        K = K.to(tracks.trans)
        if with_coco:
            rows["coco_2d"] = _numpy(project_points(out.coco, K))
        if want_boxes:
            boxes = _numpy(vertex_boxes(out.vertices, K, *box_image_size, clamp=clamp))
    elif with_coco:
        rows["coco_2d"] = np.zeros((0, 17, 2), np.float32)
    if want_boxes and boxes is None:
        boxes = np.zeros((0, 2, 2), np.float32)
    return rows, boxes


def render_overlay(image, tracks, body, K, style: str):
    """One overlay frame: people drawn on the image, a top view panel on the right."""
    import numpy as np
    import torch

    from comotion.io.render import draw_meshes, draw_skeletons, top_view

    rgb = _numpy(image.permute(1, 2, 0))
    ids = _numpy(tracks.ids).astype(np.int64).reshape(-1)
    if style == "mesh" and len(ids):
        with torch.no_grad():
            vertices = body(tracks.betas, tracks.pose, tracks.trans, vertices="all").vertices
        drawn = draw_meshes(rgb, _numpy(vertices), _numpy(body.faces), _numpy(K), ids)
    else:
        drawn = draw_skeletons(rgb, _numpy(tracks.keypoints_2d), ids)
    panel = top_view(_numpy(tracks.keypoints_3d), ids, _numpy(K), rgb.shape[1], rgb.shape[0])
    return np.concatenate([drawn, panel], axis=1)


def apply_cleanup(results, fixed_quirks: bool):
    """The reference's offline cleanup on loaded results: the kept rows, in the reference order.

    It judges tracks with the similarity settings of the tracker that produced them (recorded in
    the results header; the reference tracker gives the reference cleanup)."""
    from comotion.tracking.cleanup import CleanupConfig, cleanup_results
    from comotion.tracking.config import TrackerConfig

    tracker = TrackerConfig.recorded_in(results.header)
    return cleanup_results(results, config=CleanupConfig.for_tracker(tracker, fixed_quirks))


def export_run(job: Job, body, formats: set[str], args, fps: float | None):
    """Load the run's results, clean them up if asked, and write the derived files from them.

    The MOT file was streamed during the run; it is rewritten only with cleanup.
    Returns the (cleaned) results.
    """
    import torch

    from comotion.io.export import export_outputs, output_paths
    from comotion.io.results import load_tracks

    # Only what cleanup and the exports read: keypoints_3d (a third of a row) stays on disk.
    fields = ["betas", "pose", "trans", "keypoints_2d", "confidence"] + (["coco_2d"] if "posetrack" in formats else [])
    results = load_tracks(output_paths(job.outdir, job.stem)["tracks"], fields=fields)
    if args.cleanup:
        results = apply_cleanup(results, args.fixed_quirks)
    export_formats = formats & {"posetrack", "amass", "bvh"} | (formats & {"mot"} if args.cleanup else set())
    with torch.no_grad():
        export_outputs(
            results, body, job.outdir, job.stem, export_formats, fps, args.fixed_quirks,
            args.bvh_single_file, args.bvh_scale,
        )  # fmt: skip
    return results


def run_job(model, job: Job, args, formats: set[str]) -> dict:
    """Track one input into ``job.outdir``; returns the summary also written to ``done.json``."""
    import numpy as np
    from tqdm import tqdm

    import comotion
    from comotion.io.export import output_paths
    from comotion.io.mot import MotWriter
    from comotion.io.render import VideoWriter
    from comotion.io.results import TrackWriter
    from comotion.io.sources import Intrinsics, open_source

    intrinsics = Intrinsics.parse(args.intrinsics, args.fov)
    source = open_source(
        job.spec,
        start=args.start,
        max_frames=args.max_frames,
        stride=args.stride,
        intrinsics=intrinsics,
        folder_fps=args.fps,
    )
    if source.info.kind == "image":
        raise InputError(f"{job.spec}: a single image cannot be tracked; use 'comotion detect'")
    job.outdir.mkdir(parents=True, exist_ok=True)
    paths = output_paths(job.outdir, job.stem)
    # Outputs of an earlier run into this folder would mix with this run's.
    stale = [paths[name] for name in ("done", "mot", "posetrack", "overlay")]
    stale += [p for pattern in ("track_*.npz", "track_*.bvh", "tracks.bvh") for p in paths["motion"].glob(pattern)]
    for path in stale:
        path.unlink(missing_ok=True)
    body = model.body
    config = tracker_config(model, args)
    info = source.info
    first_K = intrinsics.matrix(info.height, info.width)
    header = {
        "comotion_version": comotion.__version__,
        "source": asdict(info),
        "fps": info.fps,
        "image_size": [info.height, info.width],
        "K": first_K.tolist(),
        "body_model": body.name,
        "weights": args.weights,
        "config": asdict(config) if is_dataclass(config) else repr(config),
        "fixed_quirks": args.fixed_quirks,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tracker = model.tracker(config)
    clamp = "image" if args.fixed_quirks else "reference"
    with_coco = bool(getattr(body, "has_coco", False))
    writer = TrackWriter(paths["tracks"], header, with_coco=with_coco, chunk_frames=args.flush_every)
    mot = MotWriter(paths["mot"], args.fixed_quirks) if "mot" in formats else None
    overlay = VideoWriter(paths["overlay"], info.fps or 30.0) if args.overlay else None
    started = time.perf_counter()
    frames_done, ids_seen, complete, results = 0, set(), False, None
    progress = tqdm(total=info.num_frames, unit="frame", desc=job.stem, disable=args.quiet, dynamic_ncols=True)
    try:
        for frame in source:
            result = tracker.step(frame.image, frame.K)
            size = tuple(frame.image.shape[1:])
            rows, boxes = track_rows(result.tracks, body, frame.K, with_coco, size if mot else None, clamp)
            detections = {
                "keypoints_2d": _numpy(result.detections.keypoints_2d),
                "conf_logit": _numpy(result.detections.conf_logit),
            }
            writer.write_frame(frame.index, frame.K, size, rows, detections)
            if mot is not None:
                mot.write(np.full(len(rows["track_id"]), frame.index), rows["track_id"], boxes)
            if overlay is not None:
                overlay.write(render_overlay(frame.image, result.tracks, body, frame.K, args.overlay_style))
            ids_seen.update(rows["track_id"].tolist())
            frames_done += 1
            progress.update()
            progress.set_postfix(tracks=len(rows["track_id"]), refresh=False)
        complete = True
    finally:
        progress.close()
        writer.close(complete=complete)
        for out in (mot, overlay):
            if out is not None:
                out.close()
        if frames_done:
            # Also after Ctrl-C or an error: the exports cover everything processed so far.
            results = export_run(job, body, formats, args, info.fps)
    seconds = time.perf_counter() - started
    summary = {
        "input": job.spec,
        "frames": frames_done,
        "tracks": len(ids_seen),
        "tracks_after_cleanup": len(results.track_ids) if args.cleanup and results is not None else None,
        "seconds": round(seconds, 3),
        "fps": round(frames_done / seconds, 3) if seconds > 0 else None,
        "outputs": sorted(p.name for p in job.outdir.iterdir() if p.name != "done.json"),
    }
    paths["done"].write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def run(args) -> int:
    import torch

    # A context, not torch.set_grad_enabled(False): the CLI also runs in-process (tests, demo)
    # and must not switch off autograd for the rest of the interpreter.
    with torch.no_grad():
        return _run(args)


def _run(args) -> int:
    from comotion.tracking.config import parse_tracker_settings

    formats = parse_formats(args.formats)
    parse_tracker_settings(args.tracker_setting)  # a bad setting fails before the model loads
    for name, value, low in [
        ("--stride", args.stride, 1),
        ("--start", args.start, 0),
        ("--flush-every", args.flush_every, 1),
    ]:
        if value < low:
            raise InputError(f"{name} must be >= {low}, got {value}")
    if args.fps is not None and not args.fps > 0:
        raise InputError(f"--fps must be > 0, got {args.fps}")
    outdir = Path(args.output)
    jobs, is_batch = list_jobs(args.input, outdir, args.batch)
    rank, world = parse_shard(args.shard)
    jobs = jobs[rank::world]
    if is_batch and not args.overwrite:
        skipped = [job for job in jobs if (job.outdir / "done.json").is_file()]
        for job in skipped:
            print(f"{job.spec}: already done ({job.outdir / 'done.json'}), skipping")
        jobs = [job for job in jobs if job not in skipped]
    if not jobs:
        print(f"nothing to do (shard {rank}/{world})")
        return 0
    model = load_model(args)
    failed = []
    for job in jobs:
        try:
            summary = run_job(model, job, args, formats)
        except ComotionError as err:
            if not is_batch:
                raise
            # One bad file must not stop a batch; it is reported and left without done.json.
            print(f"comotion track: error: {err}", file=sys.stderr)
            failed.append(job.spec)
            continue
        after = "" if summary["tracks_after_cleanup"] is None else f" ({summary['tracks_after_cleanup']} after cleanup)"
        print(
            f"{job.spec}: {summary['frames']} frames, {summary['tracks']} tracks{after}, "
            f"{summary['seconds']:.1f} s ({summary['fps'] or 0:.1f} fps) -> {job.outdir}"
        )
    if failed:
        print(f"comotion track: {len(failed)} of {len(jobs)} inputs failed: {', '.join(failed)}", file=sys.stderr)
        return 2
    return 0
