"""Derived output files from loaded results: MOT text, PoseTrack JSON, AMASS npz, BVH.

:func:`export_outputs` turns a :class:`~comotion.io.results.TrackResults` (a finished run, an
interrupted one, or the cleaned-up rows) into the requested files.  It is what ``comotion track``
runs at the end, and can be re-run on any results folder::

    results = load_tracks("out/tracks")
    export_outputs(results, load_body_model("anny"), "out", "video", formats={"mot", "bvh"})
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from comotion.io.bvh import hold_to_frames, skeleton_motion, write_bvh
from comotion.io.mot import BOX_VERTEX_STRIDE, format_mot_lines, vertex_boxes
from comotion.io.motion import write_amass
from comotion.io.posetrack import PoseTrackWriter, coco_from_keypoints27
from comotion.io.results import TrackResults

EXPORT_FORMATS = ("mot", "posetrack", "amass", "bvh")
DEFAULT_FPS = 30.0
BATCH_ROWS = 2048


def output_paths(outdir: str | Path, stem: str) -> dict[str, Path]:
    """Where each output of a video goes inside its output folder."""
    outdir = Path(outdir)
    return {
        "tracks": outdir / "tracks",
        "mot": outdir / f"{stem}.txt",
        "posetrack": outdir / f"{stem}.json",
        "motion": outdir / "motion",
        "overlay": outdir / "overlay.mp4",
        "done": outdir / "done.json",
    }


def row_boxes(results: TrackResults, body, clamp: str = "reference") -> np.ndarray:
    """Mesh boxes ``(R, 2, 2)`` pixels for every row, with each row's frame K and image size."""
    boxes = np.zeros((len(results), 2, 2), np.float32)
    if not len(results):
        return boxes
    frame_row = np.searchsorted(results.frames.frame_index, results.frame_index)
    K = torch.as_tensor(results.frames.K[frame_row])
    sizes = results.frames.image_size[frame_row]
    device = body.v_template.device
    for start in range(0, len(results), BATCH_ROWS):
        rows = slice(start, start + BATCH_ROWS)
        with torch.no_grad():
            vertices = body(
                torch.as_tensor(results.betas[rows], device=device),
                torch.as_tensor(results.pose[rows], device=device),
                torch.as_tensor(results.trans[rows], device=device),
                vertices=BOX_VERTEX_STRIDE,
            ).vertices.cpu()
        for height, width in np.unique(sizes[rows], axis=0):
            same = np.all(sizes[rows] == (height, width), axis=1)
            boxes[rows][same] = vertex_boxes(vertices[same], K[rows][same], int(height), int(width), clamp).numpy()
    return boxes


def write_mot(path: str | Path, results: TrackResults, body, fixed_quirks: bool = False) -> None:
    """MOT text for the rows of ``results`` in their order (see :mod:`comotion.io.mot`)."""
    boxes = row_boxes(results, body, "image" if fixed_quirks else "reference")
    Path(path).write_text("".join(format_mot_lines(results.frame_index, results.track_id, boxes, fixed_quirks)))


def write_posetrack(path: str | Path, results: TrackResults, body, video_name: str) -> None:
    """PoseTrack JSON with one image per processed frame (see :mod:`comotion.io.posetrack`)."""
    boxes = row_boxes(results, body, "image")
    keypoints = results.coco_2d if results.coco_2d is not None else coco_from_keypoints27(results.keypoints_2d)
    writer = PoseTrackWriter(path, video_name)
    order = np.argsort(results.frame_index, kind="stable")
    starts = np.searchsorted(results.frame_index[order], results.frames.frame_index, side="left")
    ends = np.searchsorted(results.frame_index[order], results.frames.frame_index, side="right")
    for frame_index, (height, width), start, end in zip(
        results.frames.frame_index, results.frames.image_size, starts, ends
    ):
        rows = order[start:end]
        writer.add_frame(
            frame_index, height, width, results.track_id[rows], keypoints[rows], results.confidence[rows], boxes[rows]
        )
    writer.close()


def write_motion_files(
    folder: str | Path,
    results: TrackResults,
    body,
    fps: float,
    formats: set[str],
    bvh_single_file: bool = False,
    bvh_scale: float = 1.0,
) -> list[Path]:
    """Per-track AMASS ``track_<id>.npz`` and/or BVH ``track_<id>.bvh`` (or one ``tracks.bvh``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    skeletons, frames_of = [], []
    for track_id in results.track_ids:
        track = results.track(int(track_id))
        order = np.argsort(track.frame_index, kind="stable")
        frame_index, betas = track.frame_index[order], track.betas[order[0]]
        pose, trans = track.pose[order], track.trans[order]
        if "amass" in formats:
            path = folder / f"track_{int(track_id):04d}.npz"
            write_amass(path, body, betas, pose, trans, frame_index, fps)
            written.append(path)
        if "bvh" in formats:
            skeleton = skeleton_motion(
                body, betas, pose, trans, name=f"track{int(track_id)}_" if bvh_single_file else ""
            )
            if bvh_single_file:
                skeletons.append(skeleton)
                frames_of.append(frame_index)
            else:
                path = folder / f"track_{int(track_id):04d}.bvh"
                write_bvh(path, [skeleton], fps, bvh_scale)
                written.append(path)
    if skeletons:
        # One timeline for all roots: every processed frame from the first to the last track frame.
        timeline = np.arange(min(f[0] for f in frames_of), max(f[-1] for f in frames_of) + 1)
        for skeleton, frame_index in zip(skeletons, frames_of):
            skeleton.root_position = hold_to_frames(skeleton.root_position, frame_index, timeline)
            skeleton.rotations = hold_to_frames(skeleton.rotations, frame_index, timeline)
        path = folder / "tracks.bvh"
        write_bvh(path, skeletons, fps, bvh_scale)
        written.append(path)
    return written


def export_outputs(
    results: TrackResults,
    body,
    outdir: str | Path,
    stem: str,
    formats: set[str] | frozenset[str],
    fps: float | None = None,
    fixed_quirks: bool = False,
    bvh_single_file: bool = False,
    bvh_scale: float = 1.0,
) -> list[Path]:
    """Write the requested ``formats`` (subset of :data:`EXPORT_FORMATS`) into ``outdir``.

    Rows are needed with ``betas``, ``pose``, ``trans`` (all formats) and ``keypoints_2d``,
    ``confidence`` (PoseTrack).  ``fps`` defaults to the header's, else 30.
    """
    unknown = set(formats) - set(EXPORT_FORMATS)
    if unknown:
        raise ValueError(f"unknown export formats: {sorted(unknown)}")
    paths = output_paths(outdir, stem)
    fps = fps or results.header.get("fps") or DEFAULT_FPS
    written: list[Path] = []
    if "mot" in formats:
        write_mot(paths["mot"], results, body, fixed_quirks)
        written.append(paths["mot"])
    if "posetrack" in formats:
        write_posetrack(paths["posetrack"], results, body, stem)
        written.append(paths["posetrack"])
    if formats & {"amass", "bvh"}:
        written += write_motion_files(paths["motion"], results, body, fps, set(formats), bvh_single_file, bvh_scale)
    return written
