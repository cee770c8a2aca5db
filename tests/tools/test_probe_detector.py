"""tools/probe_detector.py: per-person detector precision against synthetic ground truth."""

import numpy as np
import pytest

from comotion.model import CoMotion
from comotion.synth import load_clip
from comotion.synth.clip import annotated_people

from .conftest import load_tool, random_tiny_weights, run_tool


@pytest.fixture(scope="module")
def probe():
    return load_tool("probe_detector")


def test_relative_errors_divide_the_mean_distance_by_the_keypoint_height(probe):
    target = np.array([[0.0, 0.0], [10.0, 40.0], [20.0, 80.0]])
    predicted = np.stack([target, target + [3.0, 4.0], target * 2.0])
    errors = probe.relative_errors(predicted, target)
    distances = np.linalg.norm(target, axis=-1)  # doubling moves each point by its own length
    assert errors == pytest.approx([0.0, 5.0 / 80.0, distances.mean() / 80.0])


def test_log_side_ratios_compare_widths_and_heights(probe):
    width, height = probe.log_side_ratios(np.array([0.0, 0.0, 10.0, 40.0]), np.array([5.0, 5.0, 25.0, 45.0]))
    assert width == pytest.approx(np.log(0.5)) and height == pytest.approx(0.0)
    width, _ = probe.log_side_ratios(np.array([3.0, 0.0, 3.0, 10.0]), np.array([0.0, 0.0, 4.0, 10.0]))
    assert width == pytest.approx(np.log(1.0 / 4.0))  # a zero-width box counts as 1 px wide


def test_summary_line_reads_medians_and_the_iou_share(probe):
    records = np.array(
        [[50.0, 0.1, 0.05, 0.7, 1.0, -0.2, 0.1], [60.0, 0.3, 0.2, 0.4, 0.8, -0.4, 0.0], [70.0, np.nan, 0.1, 0.0, np.nan, np.nan, np.nan]]
    )
    line = probe.summary_line(records)
    assert "n    3" in line and "err 0.200" in line and "oracle 0.100" in line
    assert "IoU>=.5 0.33" in line and "depth 0.90" in line
    assert "width -0.30" in line and "height +0.05" in line
    assert probe.summary_line(records[:0]) == "n    0"


@pytest.fixture(scope="module")
def probed(probe, tmp_path_factory):
    """A random tiny model probed on one 3-frame clip: (exit code, printed, model, clip)."""
    tmp_path = tmp_path_factory.mktemp("probe")
    weights = random_tiny_weights(tmp_path / "random.safetensors")
    argv = ["--weights", str(weights), "--seeds", "1000", "--frames", "3", "--size", "64", "--people", "2-2", "--every", "1", "--conf", "0.0", "--workdir", str(tmp_path)]
    return *run_tool(probe, argv), CoMotion.from_pretrained(weights, body_model="anny-lowres"), load_clip(tmp_path / "seed1000" / "clip")


def test_prints_all_people_and_each_height_bin(probe, probed):
    code, printed, _, _ = probed
    assert code == 0
    lines = printed.strip().splitlines()
    assert lines[0].startswith("all people")
    assert [line.split()[0] for line in lines[1:]] == ["height"] * (len(probe.HEIGHT_BINS) - 1)


def test_one_record_per_annotated_person_and_the_oracle_is_never_worse(probe, probed):
    _, _, model, clip = probed
    records = probe.person_records(model, clip, every=1, conf_thr=0.0)
    assert len(records) == annotated_people(clip.gt).sum()
    height, error, oracle, iou, _, width_ratio, height_ratio = records.T
    assert np.allclose(height, np.ptp(clip.gt.keypoints_2d[annotated_people(clip.gt)][..., 1], axis=-1))
    assert np.all(oracle <= error + 1e-9)  # the selected detections are among the candidates
    assert np.all((iou >= 0) & (iou <= 1))
    found = np.isfinite(error)
    assert np.all(np.isfinite(width_ratio[found]) & np.isfinite(height_ratio[found]))


def test_every_skips_frames(probe, probed):
    _, _, model, clip = probed
    annotated = annotated_people(clip.gt)
    assert len(probe.person_records(model, clip, every=2, conf_thr=0.0)) == annotated[::2].sum()
