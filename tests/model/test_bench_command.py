"""``comotion bench`` runs end to end on a small config and reports every stage."""

import json

from comotion.cli import main


def test_bench_reports_every_stage(capsys):
    code = main(["bench", "--config", "tiny", "--tracks", "1,3", "--repeats", "1", "--candidates", "50",
                 "--resolution", "96", "--json"])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["ms"]) == {
        "detect_network", "decode_nms", "decode_nms_20_candidates", "decode_nms_50_candidates", "update_1", "update_3",
        "update_image_keys_values", "tracked_frame_estimate",
    }  # fmt: skip
    assert all(value > 0 for value in report["ms"].values())
    assert 0 < report["nms_survivors_of_20"] <= 20 and 0 < report["nms_survivors_of_50"] <= 50
    assert report["peak_rss_mb"]["final"] >= report["peak_rss_mb"]["after_build"] > 0


def test_bench_rejects_unknown_config(capsys):
    assert main(["bench", "--config", "enormous"]) == 2
    assert "unknown model config preset 'enormous'" in capsys.readouterr().err
