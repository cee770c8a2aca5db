"""``comotion eval track|pose``: JSON output matches the reference numbers; errors exit with 2."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from .eval_fixtures import synthetic_clip

from comotion.cli import main


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)  # --json prints nothing but the object


@pytest.mark.parametrize("protocol, block", [("posetrack21", "posetrack21_fixed"), ("mot", "plain_mot")])
def test_eval_track_json_matches_expected(metrics_dir, capsys, protocol, block):
    expected = json.loads((metrics_dir / "expected.json").read_text())
    for tracker, data in expected["trackers"].items():
        out = run_json(
            capsys,
            ["eval", "track", "--dataset", str(metrics_dir / "dataset"), "--results", str(metrics_dir / data["result_path"]),
             "--protocol", protocol, "--json"],
        )  # fmt: skip
        reference = data[block] if protocol == "posetrack21" else data[block]["motmetrics"]
        assert set(out) == {"overall", "per_sequence"}
        rows = [("overall", reference["overall"], out["overall"])]
        rows += [(seq, ref, out["per_sequence"][seq]) for seq, ref in reference["per_sequence"].items()]
        for where, ref, ours in rows:
            for key, value in ref.items():
                if value is None:
                    assert ours[key] is None, f"{tracker}/{where}/{key}"
                else:
                    assert ours[key] == pytest.approx(value, abs=1e-9), f"{tracker}/{where}/{key}"
        if protocol == "mot":
            hota = data[block]["trackeval"]["combined"]["HOTA"]
            for key in ("HOTA", "DetA", "AssA", "LocA", "HOTA(0)"):
                assert out["overall"][key.lower()] == pytest.approx(hota[key], abs=1e-9)


def test_eval_track_table(metrics_dir, capsys):
    tracker = metrics_dir / "predictions" / "gt_plus1"
    assert main(["eval", "track", "--dataset", str(metrics_dir / "dataset"), "--results", str(tracker)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "MOTA" in lines[0] and "IDF1" in lines[0]
    assert lines[-1].startswith("OVERALL") and " 100.0" in lines[-1]


def test_eval_track_bad_input_exits_2(tmp_path, capsys):
    assert main(["eval", "track", "--dataset", str(tmp_path / "missing"), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "dataset folder not found" in err


def test_eval_pose_json(tmp_path, capsys):
    kp3, kp2 = synthetic_clip(tmp_path / "clip", frames=2, people=1)
    np.savez(tmp_path / "pred.npz", frame_index=np.arange(2), track_id=np.ones(2, int),
             keypoints_2d=kp2[:, 0], keypoints_3d=kp3[:, 0] + 0.05)  # fmt: skip
    out = run_json(capsys, ["eval", "pose", "--gt", str(tmp_path / "clip"), "--pred", str(tmp_path / "pred.npz"), "--json"])
    assert out["overall"]["pck@0.05"] == 1.0 and out["overall"]["mpjpe"] == pytest.approx(0.0, abs=1e-6)
    assert out["per_sequence"]["clip"]["num_matched"] == 2
    assert not any(isinstance(v, float) and math.isnan(v) for v in out["overall"].values())
