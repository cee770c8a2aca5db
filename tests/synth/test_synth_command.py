"""``comotion synth`` end to end on tiny settings."""

import json

import numpy as np
import pytest

from comotion.cli import main
from comotion.synth import load_clip

TINY = ["--frames", "4", "--size", "48", "--people", "2-3", "--quiet"]


def test_synth_writes_clips_the_same_for_any_number_of_workers(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "one"), "--clips", "2", "--seed", "5", *TINY]) == 0
    assert main(["synth", str(tmp_path / "two"), "--clips", "2", "--seed", "5", "--workers", "2", "--export-posetrack", *TINY]) == 0
    index = json.loads((tmp_path / "one" / "synth.json").read_text())
    assert index["clips"] == ["clip_000000", "clip_000001"] and index["settings"]["seed"] == 5
    for name in index["clips"]:
        assert (tmp_path / "one" / name / "gt.npz").read_bytes() == (tmp_path / "two" / name / "gt.npz").read_bytes()
        for frame in sorted((tmp_path / "one" / name / "frames").iterdir()):
            assert frame.read_bytes() == (tmp_path / "two" / name / "frames" / frame.name).read_bytes()
    clip = load_clip(tmp_path / "one" / "clip_000001")
    assert clip.meta["seed"] == [5, 1] and clip.meta["body_model"] == "anny-lowres"
    assert clip.size == (48, 48) and clip.num_frames == 4 and 2 <= clip.gt.num_persons <= 3
    assert (tmp_path / "two" / "posetrack21" / "posetrack_mot" / "mot" / "val" / "clip_000001" / "gt" / "gt.txt").is_file()
    assert "wrote 2 clip(s)" in capsys.readouterr().out


def test_single_image_mode(tmp_path):
    assert main(["synth", str(tmp_path / "out"), "--clips", "1", "--single-image", *TINY]) == 0
    clip = load_clip(tmp_path / "out" / "clip_000000")
    assert clip.meta["independent_frames"] is True and clip.num_frames == 4
    assert not np.allclose(clip.gt.K[0], clip.gt.K[1])


@pytest.mark.parametrize(
    "options, message",
    [
        (["--people", "5-3"], "--people"),
        (["--people", "many"], "--people"),
        (["--frames", "0"], "--frames must be at least 1"),
        (["--body-model", "no-such-model"], "no-such-model"),
        (["--single-image", "--export-posetrack"], "--export-posetrack"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, options, message):
    assert main(["synth", str(tmp_path / "out"), "--quiet", *options]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_refuses_a_non_empty_output_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    assert main(["synth", str(tmp_path), "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err
