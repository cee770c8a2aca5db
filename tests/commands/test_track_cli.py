"""``comotion track`` and ``comotion detect`` end to end, with a small fake model.

The fake follows the model contract (``from_pretrained``, ``body``, ``tracker(config).step``,
``prepare``, ``detect``) so these tests exercise the command, the sources and the writers
without network weights.
"""

from __future__ import annotations

import json
import os
import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image

import comotion.tracking  # noqa: F401  (imported while comotion.model is real; fake_model replaces it)
from comotion.cli import build_parser, main
from comotion.commands import track as track_command
from comotion.geometry.camera import project_points
from comotion.io.results import load_tracks
from comotion.io.sources import open_source
from tests.io import io_fixtures


@dataclass
class FakeTracks:
    ids: torch.Tensor
    betas: torch.Tensor
    pose: torch.Tensor
    trans: torch.Tensor
    keypoints_3d: torch.Tensor
    keypoints_2d: torch.Tensor
    hidden: torch.Tensor
    confidence: torch.Tensor


@dataclass
class FakeDetections:
    betas: torch.Tensor
    pose: torch.Tensor
    trans: torch.Tensor
    keypoints_3d: torch.Tensor
    keypoints_2d: torch.Tensor
    conf_logit: torch.Tensor


@dataclass
class FakeResult:
    frame_index: int
    detections: FakeDetections
    tracks: FakeTracks
    created_ids: list
    ended_ids: list


def people(body, ids: list[int], step: int, K: torch.Tensor):
    """Deterministic people walking right: id k stands at x = k - 1.5 + 0.05 * step, 5 m away."""
    n = len(ids)
    betas = torch.zeros(n, 10)
    pose = io_fixtures.random_pose(n, seed=0, scale=0.1) if n else torch.zeros(0, 72)
    trans = torch.tensor([[k - 1.5 + 0.05 * step, 0.0, 5.0] for k in ids]).reshape(n, 3)
    keypoints_3d = body(betas, pose, trans).keypoints
    return betas, pose, trans, keypoints_3d, project_points(keypoints_3d, K)


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class FakeTracker:
    """Track 1 lives in every frame, track 2 in frames 2..5; raises at ``interrupt_at``;
    records the process's resident memory at every step in ``memory``."""

    interrupt_at: int | None = None
    memory: list[int] = []

    def __init__(self, body):
        self.body = body
        self.step_count = 0

    def step(self, image, K=None):
        assert image.dtype == torch.uint8 and image.dim() == 3
        index = self.step_count
        self.memory.append(resident_bytes())
        if index == self.interrupt_at:
            raise KeyboardInterrupt
        self.step_count += 1
        ids = [1] + ([2] if 2 <= index <= 5 else [])
        betas, pose, trans, kp3d, kp2d = people(self.body, ids, index, K)
        tracks = FakeTracks(
            torch.tensor(ids, dtype=torch.float32),
            betas,
            pose,
            trans,
            kp3d,
            kp2d,
            torch.zeros(len(ids), 8),
            torch.full((len(ids),), 0.9),
        )
        detections = FakeDetections(betas, pose, trans, kp3d, kp2d, torch.full((len(ids),), 2.0))
        return FakeResult(index, detections, tracks, [], [])


class FakeCoMotion:
    loaded: list = []
    configs: list = []
    resolutions: list = []

    def __init__(self, body):
        self.body = body
        self.config = FakeConfig()

    @classmethod
    def from_pretrained(cls, path_or_name="default", body_model=None, device=None):
        cls.loaded.append((path_or_name, body_model, device))
        return cls(io_fixtures.make_tiny_body())

    def set_input_resolution(self, side):
        FakeCoMotion.resolutions.append(side)

    def tracker(self, config=None):
        FakeCoMotion.configs.append((self.config, config))
        return FakeTracker(self.body)

    def prepare(self, image, K=None):
        return image, K

    def detect(self, frame, std=0.08, iou_thr=0.4, conf_thr=0.2):
        image, K = frame
        assert (std, iou_thr, conf_thr) == (0.15, 0.4, 0.25)
        betas, pose, trans, kp3d, kp2d = people(self.body, [1, 2], 0, K)
        return FakeDetections(betas, pose, trans, kp3d, kp2d, torch.tensor([1.5, -0.5])), None


@dataclass
class FakeConfig:
    fixed: bool = False


@pytest.fixture
def fake_model(monkeypatch):
    module = types.ModuleType("comotion.model")
    module.CoMotion = FakeCoMotion
    module.with_fixes = lambda config: FakeConfig(fixed=True)
    monkeypatch.setitem(sys.modules, "comotion.model", module)
    monkeypatch.setattr(track_command, "tracker_config", lambda model, args: FakeConfig(args.fixed_quirks))
    FakeCoMotion.loaded = []
    FakeCoMotion.configs = []
    FakeCoMotion.resolutions = []
    FakeTracker.interrupt_at = None
    FakeTracker.memory = []
    return FakeCoMotion


@pytest.fixture
def video(tmp_path):
    frames = io_fixtures.numbered_frames(8, 120, 160)
    return io_fixtures.write_video(tmp_path / "walk.mp4", frames, fps=10)


def test_help_explains_every_option(capsys):
    parser = build_parser()
    for command in ("track", "detect"):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        text = capsys.readouterr().out
        sub = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == command)[1]
        for action in sub._actions:
            for option in action.option_strings:
                assert option in text
            if action.option_strings and action.dest != "help":
                assert action.help, f"{command} {action.option_strings} has no help"


def test_track_video_writes_every_output(tmp_path, video, fake_model, capsys):
    out = tmp_path / "out"
    rc = main(
        [
            "track",
            str(video),
            "-o",
            str(out),
            "--formats",
            "tracks,mot,posetrack,amass,bvh",
            "--no-cleanup",
            "--overlay",
            "-q",
            "--flush-every",
            "3",
        ]
    )
    assert rc == 0
    assert "walk.mp4: 8 frames, 2 tracks" in capsys.readouterr().out
    assert fake_model.loaded == [("default", None, "cpu")]
    results = load_tracks(out / "tracks")
    assert results.complete and results.header["body_model"] == "tiny-test-body"
    assert results.header["fps"] == 10.0 and results.header["image_size"] == [120, 160]
    assert results.header["config"] == {"fixed": False}
    np.testing.assert_array_equal(results.frames.frame_index, np.arange(8))
    assert len(results) == 8 + 4 and results.coco_2d.shape == (12, 17, 2)
    np.testing.assert_allclose(results.confidence, 0.9)
    assert len(results.detections) == 12
    # The MOT text: one line per row, frame-major, 1-based frames.
    mot = (out / "walk.txt").read_text().splitlines()
    assert len(mot) == 12 and mot[0].startswith("1,1,") and mot[3].startswith("3,2,")
    posetrack = json.loads((out / "walk.json").read_text())
    assert len(posetrack["images"]) == 8 and len(posetrack["annotations"]) == 12
    assert sorted(p.name for p in (out / "motion").iterdir()) == [
        "track_0001.bvh",
        "track_0001.npz",
        "track_0002.bvh",
        "track_0002.npz",
    ]
    amass = np.load(out / "motion" / "track_0002.npz")
    np.testing.assert_array_equal(amass["frame_indices"], [2, 3, 4, 5])
    assert float(amass["mocap_framerate"]) == 10.0
    overlay = open_source(out / "overlay.mp4")
    assert (overlay.info.height, overlay.info.width) == (120, 160 + 120) and len(list(overlay)) == 8
    done = json.loads((out / "done.json").read_text())
    assert done["frames"] == 8 and done["tracks"] == 2 and "tracks" in done["outputs"]


def test_resolution_option_reaches_the_model(tmp_path, video, fake_model):
    assert main(["track", str(video), "-o", str(tmp_path / "a"), "--formats", "tracks", "-q", "--no-cleanup"]) == 0
    assert fake_model.resolutions == []
    assert main(["track", str(video), "-o", str(tmp_path / "b"), "--formats", "tracks", "-q", "--no-cleanup", "--resolution", "384"]) == 0
    assert fake_model.resolutions == [384]


def test_track_image_folder_with_frame_selection(tmp_path, fake_model):
    folder = tmp_path / "frames"
    folder.mkdir()
    for k, rgb in enumerate(io_fixtures.numbered_frames(10, 60, 80)):
        Image.fromarray(rgb).convert("L" if k % 2 else "RGB").save(folder / f"img{k}.png")
    out = tmp_path / "out"
    rc = main(
        [
            "track",
            str(folder),
            "-o",
            str(out),
            "--start",
            "1",
            "--stride",
            "2",
            "--max-frames",
            "4",
            "--fov",
            "60",
            "--fps",
            "24",
            "--formats",
            "tracks,amass",
            "-q",
            "--no-cleanup",
        ]
    )
    assert rc == 0
    results = load_tracks(out)
    np.testing.assert_array_equal(results.frames.frame_index, np.arange(4))
    assert results.header["source"]["start"] == 1 and results.header["source"]["stride"] == 2
    assert results.header["fps"] == 12.0  # 24 fps folder, every second image
    assert float(np.load(out / "motion" / "track_0001.npz")["mocap_framerate"]) == 12.0
    np.testing.assert_allclose(results.frames.K[0, 0, 0], 40 / np.tan(np.radians(30)), rtol=1e-6)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["track", "{tmp}/missing.mp4"], "missing.mp4"),
        (["track", "{tmp}/empty.mp4"], "empty.mp4: video file is empty"),
        (["track", "{tmp}/still.png"], "comotion detect"),
        (["track", "{video}", "--formats", "mot,fbx"], "fbx"),
        (["track", "{video}", "--intrinsics", "1,2"], "fx,fy,cx,cy"),
        (["track", "{video}", "--shard", "3/2"], "RANK/WORLD"),
        (["track", "{video}", "--fps", "0"], "--fps"),
        (["track", "{video}", "--tracker-setting", "init_conf=0.5"], "unknown name 'init_conf'"),
        (["detect", "{tmp}/garbage.png"], "garbage.png"),
    ],
)
def test_bad_inputs_give_one_line_and_exit_2(tmp_path, video, fake_model, capsys, argv, fragment):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "garbage.png").write_bytes(b"\x00\x01garbage")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "still.png")
    argv = [a.format(tmp=tmp_path, video=video) for a in argv] + ["-o", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


def test_ctrl_c_keeps_everything_processed(tmp_path, video, fake_model, capsys):
    FakeTracker.interrupt_at = 4
    out = tmp_path / "out"
    rc = main(["track", str(video), "-o", str(out), "--formats", "tracks,mot,posetrack,bvh", "--no-cleanup", "-q"])
    assert rc == 130
    results = load_tracks(out)
    assert not results.complete
    np.testing.assert_array_equal(results.frames.frame_index, np.arange(4))
    assert len((out / "walk.txt").read_text().splitlines()) == 4 + 2
    assert len(json.loads((out / "walk.json").read_text())["images"]) == 4
    assert (out / "motion" / "track_0002.bvh").is_file()
    assert not (out / "done.json").exists()


def test_cleanup_result_replaces_the_online_mot(tmp_path, video, fake_model, monkeypatch):
    calls = []

    def drop_track_2(results, fixed_quirks):
        calls.append(fixed_quirks)
        return results.select(results.track_id != 2)

    monkeypatch.setattr(track_command, "apply_cleanup", drop_track_2)
    out = tmp_path / "out"
    assert main(["track", str(video), "-o", str(out), "--fixed-quirks", "-q"]) == 0
    assert calls == [True]
    assert fake_model.configs == [(FakeConfig(fixed=True), FakeConfig(fixed=True))]  # network and tracker fixes
    mot = (out / "walk.txt").read_text().splitlines()
    assert len(mot) == 8 and all(line.split(",")[1] == "1" for line in mot)
    assert len(load_tracks(out)) == 12  # the online results stay complete
    assert json.loads((out / "done.json").read_text())["tracks_after_cleanup"] == 1


def test_batch_list_shards_and_rerun_skips_done(tmp_path, fake_model, monkeypatch, capsys):
    videos = []
    for name in ("a", "b", "c"):
        videos.append(io_fixtures.write_video(tmp_path / f"{name}.mp4", io_fixtures.numbered_frames(3, 32, 32)))
    listing = tmp_path / "videos.txt"
    listing.write_text("# inputs\na.mp4\n\nb.mp4\n" + str(videos[2]) + "\n")
    out = tmp_path / "out"
    common = ["track", str(listing), "-o", str(out), "-q", "--no-cleanup"]
    assert main(common + ["--shard", "1/2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["b"]
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(common) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a", "b", "c"]
    assert all((out / n / "done.json").is_file() and (out / n / f"{n}.txt").is_file() for n in "abc")
    capsys.readouterr()
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    (out / "c" / "done.json").unlink()  # c looks interrupted: only c is redone
    assert main(common) == 0
    printed = capsys.readouterr().out
    assert printed.count("skipping") == 2 and "c.mp4: 3 frames" in printed


def test_batch_folder_of_videos(tmp_path, fake_model):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("x.MP4", "y.mkv"):
        codec = ("ffv1", "yuv420p") if name.endswith("mkv") else ("libx264", "yuv444p")
        io_fixtures.write_video(folder / name, io_fixtures.numbered_frames(2, 16, 16), codec=codec[0], pix_fmt=codec[1])
    (folder / "notes.txt").write_text("x")
    out = tmp_path / "out"
    assert main(["track", str(folder), "--batch", "-o", str(out), "-q", "--no-cleanup"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["x", "y"]


def test_shard_and_device_parsing():
    assert track_command.parse_shard(None, {}) == (0, 1)
    assert track_command.parse_shard(None, {"RANK": "3", "WORLD_SIZE": "4"}) == (3, 4)
    assert track_command.parse_shard("1/2", {"RANK": "3", "WORLD_SIZE": "4"}) == (1, 2)
    assert track_command.resolve_device("cuda", {"LOCAL_RANK": "2"}) == "cuda:2"
    assert track_command.resolve_device("cpu", {"LOCAL_RANK": "2"}) == "cpu"
    assert track_command.input_stem("rtsp://cam.local:554/live/stream1") == "stream1"
    assert track_command.input_stem("0") == "camera0"


@pytest.mark.parametrize("mode", ["RGBA", "L"])
def test_detect_single_image(tmp_path, fake_model, capsys, mode):
    image = Image.fromarray(np.full((90, 120, 4), 128, np.uint8), "RGBA").convert(mode)
    image.save(tmp_path / "person.png")
    out = tmp_path / "out"
    assert main(["detect", str(tmp_path / "person.png"), "-o", str(out), "--overlay"]) == 0
    assert "person.png: 2 people" in capsys.readouterr().out
    record = np.load(out / "person.npz")
    assert record["betas"].shape == (2, 10) and record["keypoints_2d"].shape == (2, 27, 2)
    np.testing.assert_allclose(record["confidence"], 1 / (1 + np.exp(-np.array([1.5, -0.5]))), rtol=1e-6)
    np.testing.assert_allclose(record["K"], [[240, 0, 60], [0, 240, 45]])
    assert record["coco_2d"].shape == (2, 17, 2)
    summary = json.loads((out / "person.json").read_text())
    assert len(summary["detections"]) == 2 and len(summary["detections"][0]["pose"]) == 72
    assert Image.open(out / "person_overlay.png").size == (120, 90)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc to read resident memory")
def test_500_frames_memory_flat_and_outputs_complete(tmp_path, fake_model):
    path = io_fixtures.write_video(tmp_path / "long.mp4", io_fixtures.numbered_frames(500, 48, 64), fps=25)
    out = tmp_path / "out"
    rc = main(
        [
            "track",
            str(path),
            "-o",
            str(out),
            "-q",
            "--no-cleanup",
            "--formats",
            "tracks,mot,posetrack",
            "--flush-every",
            "50",
        ]
    )
    assert rc == 0
    memory = np.array(FakeTracker.memory)
    assert len(memory) == 500
    # After warm-up, resident memory does not grow with the number of processed frames.
    assert memory[100:].max() - memory[100] < 8 * 2**20
    results = load_tracks(out)
    assert results.complete and len(results.frames) == 500 and len(results) == 500 + 4
    assert len(list((out / "tracks").glob("part-*.npz"))) >= 500 // 50  # more if a slow machine hit the time flush
    assert len((out / "long.txt").read_text().splitlines()) == 504
    assert json.loads((out / "done.json").read_text())["frames"] == 500


def test_batch_reports_a_bad_video_and_goes_on(tmp_path, fake_model, capsys):
    io_fixtures.write_video(tmp_path / "good.mp4", io_fixtures.numbered_frames(2, 16, 16))
    (tmp_path / "bad.mp4").write_bytes(b"garbage" * 100)
    listing = tmp_path / "list.txt"
    listing.write_text("bad.mp4\ngood.mp4\n")
    out = tmp_path / "out"
    assert main(["track", str(listing), "-o", str(out), "-q", "--no-cleanup"]) == 2
    captured = capsys.readouterr()
    assert "bad.mp4: cannot open video" in captured.err and "1 of 2 inputs failed" in captured.err
    assert (out / "good" / "done.json").is_file() and not (out / "bad" / "done.json").exists()


# ----------------------------------------------------------------------------------------------
# With the real network: the parity fixtures' small model, fake SMPL body and reference outputs


def test_detect_reproduces_the_reference_single_image_mode(tmp_path, parity_dir, parity_model, monkeypatch):
    monkeypatch.setattr(track_command, "load_model", lambda args: parity_model)
    image = parity_dir / "frames" / "e2e_512x512" / "000000.png"
    assert main(["detect", str(image), "-o", str(tmp_path)]) == 0
    record = np.load(tmp_path / "000000.npz")
    expected = torch.load(parity_dir / "detect.pt", weights_only=True)["cases"][0]["decoded_demo_kwargs"]
    assert record["betas"].shape == tuple(expected["betas"].shape[1:])
    np.testing.assert_allclose(record["trans"], expected["trans"][0], atol=1e-4)
    np.testing.assert_allclose(record["keypoints_2d"], expected["pred_2d"][0], atol=1e-2)
    np.testing.assert_allclose(record["conf_logit"], expected["conf"][0, :, 0], atol=1e-4)
    assert record["coco_2d"].shape == (len(record["betas"]), 17, 2)


def test_track_reproduces_the_reference_run_and_mot_file(tmp_path, parity_dir, parity_model, monkeypatch):
    monkeypatch.setattr(track_command, "load_model", lambda args: parity_model)
    out = tmp_path / "out"
    frames = parity_dir / "frames" / "e2e_512x512"
    assert main(["track", str(frames), "-o", str(out), "-q", "--formats", "tracks,mot,posetrack,bvh"]) == 0
    run = torch.load(parity_dir / "e2e_512x512.pt", weights_only=True)
    results = load_tracks(out)
    assert results.complete and len(results.frames) == run["num_frames"]
    for f, expected in enumerate(run["per_frame"]):
        rows = results.frame_index == f
        assert results.track_id[rows].tolist() == expected["track_ids"]
        live = len(expected["track_ids"])
        np.testing.assert_allclose(results.trans[rows], expected["tracks"]["trans"][0, :live], atol=1e-4)
        np.testing.assert_allclose(results.keypoints_2d[rows], expected["tracks"]["pred_2d"][0, :live], atol=1e-2)
    assert (out / "e2e_512x512.txt").read_text() == (parity_dir / "e2e_512x512_mot.txt").read_text()
    kept = sorted({int(line.split(",")[1]) for line in (out / "e2e_512x512.txt").read_text().splitlines()})
    assert sorted(p.name for p in (out / "motion").iterdir()) == [f"track_{i:04d}.bvh" for i in kept]


def test_tracker_config_layers_defaults_stored_settings_and_options():
    from comotion import TrackerConfig

    class StoredSettings:
        def tracker_config(self, fixed_quirks):
            base = TrackerConfig.fixed if fixed_quirks else TrackerConfig
            return base(init_conf_thr=0.5, init_match_thr=0.4)

    args = types.SimpleNamespace(fixed_quirks=False, tracker_setting=["init_match_thr=0.6", "young_age=4"])
    config = track_command.tracker_config(StoredSettings(), args)
    assert (config.init_conf_thr, config.init_match_thr, config.young_age) == (0.5, 0.6, 4)
    assert not config.shot_cut_reset
    args = types.SimpleNamespace(fixed_quirks=True, tracker_setting=[])
    config = track_command.tracker_config(StoredSettings(), args)
    assert config.shot_cut_reset and config.init_conf_thr == 0.5
