"""tools/tune_tracker.py: the grid, scoring on held-out clips, and storing the best setting."""

import pytest

from comotion.model import CoMotion

from .conftest import load_tool, random_tiny_weights


@pytest.fixture(scope="module")
def tune():
    return load_tool("tune_tracker")


def test_grid_is_every_combination(tune):
    assert tune.grid_settings(["a=1,2", "b=3"]) == [["a=1", "b=3"], ["a=2", "b=3"]]
    assert tune.grid_settings([]) == [[]]


def test_tunes_and_writes_the_best_setting(tune, tmp_path, capsys):
    weights = random_tiny_weights(tmp_path / "random.safetensors")
    out = tmp_path / "tuned.safetensors"
    argv = [
        "--weights", str(weights), "--grid", "init_conf_thr=0.3,0.9", "--seeds", "1000", "--frames", "3",
        "--size", "64", "--people", "1-1", "--workdir", str(tmp_path / "work"), "--write", str(out), "--half",
    ]  # fmt: skip
    assert tune.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("MOTA") == 3 and "init_conf_thr=0.3" in printed and "init_conf_thr=0.9" in printed
    best = printed.split("best: ")[1].split()[0]
    tuned = CoMotion.from_pretrained(out, body_model="anny-lowres")
    assert tuned.tracker_settings == {"init_conf_thr": float(best.split("=")[1])}
    assert out.stat().st_size < 0.55 * weights.stat().st_size


def test_unknown_setting_is_one_line(tune, tmp_path, capsys):
    assert tune.main(["--grid", "no_such=1", "--workdir", str(tmp_path)]) == 2
    assert "unknown name 'no_such'" in capsys.readouterr().err


def test_scores_are_pooled_over_clips(tune, tmp_path, capsys):
    """The printed score counts every clip's boxes together (MOT OVERALL row), and --per-clip lists each clip."""
    weights = random_tiny_weights(tmp_path / "random.safetensors")
    argv = [
        "--weights", str(weights), "--seeds", "1000-1001", "--frames", "3", "--size", "128", "--people", "2-3",
        "--workdir", str(tmp_path / "work"), "--per-clip",
    ]  # fmt: skip
    assert tune.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    per_clip = [line for line in lines if line.strip().startswith("seed ")]
    assert len(per_clip) == 2
    clip_boxes = sum(int(line.split("GT boxes")[1]) for line in per_clip)
    pooled = next(line for line in lines if line.startswith("MOTA"))
    assert int(pooled.split(" of ")[1].split()[0]) == clip_boxes > 0
