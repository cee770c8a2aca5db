"""The streamed results folder: round trip, interruption, flat memory, kill -9."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

from comotion.errors import InputError
from comotion.io.results import TrackWriter, load_tracks, read_header


def frame_rows(frame_index: int, num_tracks: int, coco: bool = False, seed: int | None = None) -> dict:
    rng = np.random.default_rng(frame_index if seed is None else seed)
    rows = {
        "track_id": np.arange(1, num_tracks + 1) + frame_index // 7,
        "betas": rng.normal(size=(num_tracks, 10)).astype(np.float32),
        "pose": rng.normal(size=(num_tracks, 72)).astype(np.float32),
        "trans": rng.normal(size=(num_tracks, 3)).astype(np.float32),
        "keypoints_3d": rng.normal(size=(num_tracks, 27, 3)).astype(np.float32),
        "keypoints_2d": rng.normal(size=(num_tracks, 27, 2)).astype(np.float32),
        "confidence": rng.uniform(size=num_tracks).astype(np.float32),
    }
    if coco:
        rows["coco_2d"] = rng.normal(size=(num_tracks, 17, 2)).astype(np.float32)
    return rows


def detection_rows(frame_index: int, count: int) -> dict:
    rng = np.random.default_rng(1000 + frame_index)
    return {"keypoints_2d": rng.normal(size=(count, 27, 2)), "conf_logit": rng.normal(size=count)}


K = np.array([[100.0, 0, 32], [0, 100, 24]], np.float32)
HEADER = {"body_model": "tiny", "fps": 25.0, "image_size": [48, 64], "K": K, "config": {"a": 1}}


def test_round_trip_keeps_every_row_and_header(tmp_path):
    counts = [3, 0, 2, 5, 1, 0, 4]
    with TrackWriter(tmp_path / "tracks", HEADER, with_coco=True, chunk_frames=3, flush_seconds=1e9) as writer:
        for f, n in enumerate(counts):
            writer.write_frame(f, K, (48, 64), frame_rows(f, n, coco=True), detection_rows(f, f % 3))
    results = load_tracks(tmp_path / "tracks")
    assert results.complete
    assert results.header["body_model"] == "tiny" and results.header["K"] == K.tolist()
    assert results.header["num_frames"] == 7 and results.header["num_rows"] == sum(counts)
    assert results.header["fields"]["track"]["pose"]["shape"] == [72]
    assert sorted(p.name for p in (tmp_path / "tracks").iterdir()) == [
        "header.json", "part-000000.npz", "part-000001.npz", "part-000002.npz"
    ]  # fmt: skip
    assert len(results) == sum(counts)
    np.testing.assert_array_equal(results.frame_index, np.repeat(np.arange(7), counts))
    np.testing.assert_array_equal(results.frames.frame_index, np.arange(7))
    np.testing.assert_array_equal(results.frames.image_size, np.tile([48, 64], (7, 1)))
    np.testing.assert_allclose(results.frames.K, np.tile(K, (7, 1, 1)))
    for f, n in enumerate(counts):
        expected = frame_rows(f, n, coco=True)
        rows = results.frame_index == f
        for name, value in expected.items():
            np.testing.assert_array_equal(getattr(results, name)[rows], value)
        det = detection_rows(f, f % 3)
        mask = results.detections.frame_index == f
        np.testing.assert_allclose(results.detections.keypoints_2d[mask], det["keypoints_2d"], rtol=1e-6)
        np.testing.assert_allclose(results.detections.conf_logit[mask], det["conf_logit"], rtol=1e-6)
    # Loading from the output folder and a subset of fields.
    subset = load_tracks(tmp_path, fields=["pose"])
    assert subset.betas is None and subset.pose.shape == (sum(counts), 72)
    one = results.track(int(results.track_ids[0]))
    assert np.all(one.track_id == results.track_ids[0]) and np.all(np.diff(one.frame_index) > 0)


def test_without_coco_and_with_torch_inputs(tmp_path):
    import torch

    rows = {k: torch.as_tensor(v) for k, v in frame_rows(0, 2).items()}
    with TrackWriter(tmp_path, HEADER) as writer:
        writer.write_frame(0, torch.as_tensor(K), (48, 64), rows)
    results = load_tracks(tmp_path)
    assert results.coco_2d is None and "coco_2d" not in results.header["fields"]["track"]
    np.testing.assert_array_equal(results.pose, rows["pose"].numpy())
    assert len(results.detections) == 0


def test_wrong_shapes_are_rejected(tmp_path):
    writer = TrackWriter(tmp_path, HEADER)
    rows = frame_rows(0, 2)
    rows["pose"] = rows["pose"][:, :69]
    with pytest.raises(ValueError):
        writer.write_frame(0, K, (48, 64), rows)
    rows = frame_rows(0, 2)
    del rows["confidence"]
    with pytest.raises(ValueError, match="confidence"):
        writer.write_frame(0, K, (48, 64), rows)


def test_exception_inside_writer_keeps_buffered_frames_and_marks_incomplete(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with TrackWriter(tmp_path, HEADER, chunk_frames=100) as writer:
            for f in range(5):
                writer.write_frame(f, K, (48, 64), frame_rows(f, 2))
            raise KeyboardInterrupt
    results = load_tracks(tmp_path)
    assert not results.complete
    np.testing.assert_array_equal(results.frames.frame_index, np.arange(5))


def test_time_based_flush_reaches_disk(tmp_path):
    writer = TrackWriter(tmp_path, HEADER, chunk_frames=1000, flush_seconds=0.0)
    writer.write_frame(0, K, (48, 64), frame_rows(0, 1))
    assert len(load_tracks(tmp_path).frames) == 1  # readable before close
    writer.close()


def test_stale_temporary_parts_are_ignored_and_broken_parts_named(tmp_path):
    with TrackWriter(tmp_path, HEADER, chunk_frames=2) as writer:
        for f in range(4):
            writer.write_frame(f, K, (48, 64), frame_rows(f, 1))
    (tmp_path / "part-000002.npz.tmp").write_bytes(b"half a zip")
    assert len(load_tracks(tmp_path).frames) == 4
    (tmp_path / "part-000001.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="part-000001.npz"):
        load_tracks(tmp_path)


def test_not_a_results_folder(tmp_path):
    with pytest.raises(InputError, match="header.json"):
        load_tracks(tmp_path)
    (tmp_path / "header.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(InputError, match="comotion-tracks"):
        read_header(tmp_path)


def test_memory_stays_flat_over_500_frames(tmp_path):
    num_frames, num_tracks = 500, 10
    rows = frame_rows(0, num_tracks, coco=True)
    detections = detection_rows(0, 12)
    tracemalloc.start()
    try:
        writer = TrackWriter(tmp_path, HEADER, with_coco=True, chunk_frames=50, flush_seconds=1e9)
        peaks = []
        for f in range(num_frames):
            writer.write_frame(f, K, (48, 64), rows, detections)
            if f % 100 == 99:
                peaks.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.reset_peak()
        writer.close()
        current = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    written = sum(p.stat().st_size for p in tmp_path.glob("part-*.npz"))
    assert written > 5e6
    # One chunk is ~1/10 of the data; the peak must not grow with the number of frames.
    assert max(peaks) < written / 4
    assert max(peaks[1:]) < 1.2 * peaks[0]
    assert current < 1e6
    results = load_tracks(tmp_path)
    assert results.complete and len(results) == num_frames * num_tracks
    np.testing.assert_array_equal(results.frames.frame_index, np.arange(num_frames))


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from comotion.io.results import TrackWriter

    rows = {
        "track_id": np.array([1, 2]), "betas": np.zeros((2, 10)), "pose": np.zeros((2, 72)),
        "trans": np.zeros((2, 3)), "keypoints_3d": np.zeros((2, 27, 3)),
        "keypoints_2d": np.zeros((2, 27, 2)), "confidence": np.ones(2),
    }
    writer = TrackWriter(sys.argv[1], {"body_model": "x"}, chunk_frames=10, flush_seconds=1e9)
    frame = 0
    while True:
        rows["trans"][:, 0] = frame
        writer.write_frame(frame, np.eye(2, 3), (4, 4), rows)
        print(frame, flush=True)
        frame += 1
    """
)


def test_results_survive_kill_9_midway(tmp_path):
    out = tmp_path / "tracks"
    child = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            if int(line) >= 57:
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    results = load_tracks(out)
    assert not results.complete
    num_frames = len(results.frames)
    assert num_frames >= 50 and num_frames % 10 == 0
    np.testing.assert_array_equal(results.frames.frame_index, np.arange(num_frames))
    np.testing.assert_array_equal(results.trans[:, 0], np.repeat(np.arange(num_frames), 2))
