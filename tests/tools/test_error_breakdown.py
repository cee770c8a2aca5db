"""tools/error_breakdown.py: sorting a run's misses and false positives by cause."""

import numpy as np
import pytest

from .conftest import load_tool, random_tiny_weights, run_tool


@pytest.fixture(scope="module")
def breakdown():
    return load_tool("error_breakdown")


def box(x1, y1, x2, y2):
    return np.array([[x1, y1, x2, y2]], np.float64)


def test_pairing_needs_iou_half_and_prefers_the_better_pair(breakdown):
    gt = np.concatenate([box(0, 0, 10, 20), box(100, 0, 110, 20)])
    pred = np.concatenate([box(1, 0, 11, 20), box(0, 0, 10, 20), box(100, 0, 104, 20)])
    iou, gt_paired, pred_paired = breakdown.pair_boxes(gt, pred)
    assert iou.shape == (2, 3)
    # Both of the first two predictions fit person 0; the exact one wins.  Person 1's box covers
    # 0.4 of it: below 0.5, so unpaired.
    assert gt_paired.tolist() == [True, False]
    assert pred_paired.tolist() == [False, True, False]
    empty_iou, no_gt, no_pred = breakdown.pair_boxes(np.zeros((0, 4)), pred)
    assert empty_iou.shape == (0, 3) and len(no_gt) == 0 and not no_pred.any()


def test_false_positives_are_boxed_off_duplicate_or_phantom(breakdown):
    gt = np.concatenate([box(0, 0, 10, 20), box(100, 0, 110, 20)])
    pred = np.concatenate([box(0, 0, 10, 20), box(2, 0, 12, 20), box(100, 0, 104, 20), box(200, 200, 210, 220)])
    iou, gt_paired, pred_paired = breakdown.pair_boxes(gt, pred)
    assert breakdown.false_positive_kinds(iou, gt_paired, pred_paired) == ["duplicate", "boxed off", "phantom"]


def test_miss_causes_follow_the_run_records(breakdown):
    person = box(0, 0, 10, 20)[0]
    nothing = np.zeros((0, 4))
    near = box(0, 0, 5, 20)  # IoU 0.5 with the person: above both overlap thresholds
    far = box(50, 50, 60, 70)

    def cause(outputs=nothing, raw=nothing, detections=nothing, conf=()):
        return breakdown.miss_cause(person, outputs, raw, detections, np.asarray(conf, np.float64), 0.8)

    assert cause(outputs=near) == "boxed off"
    assert cause(outputs=far, raw=near) == "tracked, removed by cleanup"
    assert cause(detections=np.concatenate([near, far]), conf=[0.9, 0.1]) == "detected, not started"
    assert cause(detections=np.concatenate([near, far]), conf=[0.5, 0.95]) == "detected, low confidence"
    assert cause(detections=far, conf=[0.99]) == "not detected"
    assert cause() == "not detected"


def test_recall_counts_bin_people_and_count_the_paired(breakdown):
    values = np.array([0.3, 0.9, 0.97, 1.0, 0.6])
    paired = np.array([False, True, True, False, True])
    counts = breakdown.recall_counts(values, paired, breakdown.VISIBLE_BINS)
    assert counts.tolist() == [[0, 1], [1, 1], [1, 1], [1, 2]]


def test_keypoint_boxes_span_each_persons_points(breakdown):
    keypoints = np.array([[[5.0, 2.0], [1.0, 9.0]], [[0.0, 0.0], [3.0, 3.0]]])
    assert breakdown.keypoint_boxes(keypoints).tolist() == [[1.0, 2.0, 5.0, 9.0], [0.0, 0.0, 3.0, 3.0]]


def test_breaks_down_a_tuned_run_and_every_box_is_counted_once(breakdown, tmp_path):
    weights = random_tiny_weights(tmp_path / "random.safetensors")
    work = tmp_path / "work"
    argv = [
        "--weights", str(weights), "--seeds", "1000", "--frames", "3", "--size", "128", "--people", "2-3",
        "--workdir", str(work), "--grid", "init_conf_thr=0.0",
    ]  # fmt: skip
    assert run_tool(load_tool("tune_tracker"), argv)[0] == 0
    code, printed = run_tool(breakdown, ["--workdir", str(work), "--seeds", "1000"])
    assert code == 0
    lines = printed.splitlines()
    total, paired = (int(v) for v in lines[0].replace(",", "").split()[2::2])
    misses = int(next(line for line in lines if line.startswith("misses")).split()[1].rstrip(":"))
    causes = sum(int(line.split()[-1]) for line in lines[2:7])
    assert total > 0 and misses == total - paired == causes
    tables = [i for i, line in enumerate(lines) if line.startswith("recall by ")]
    assert [lines[i] for i in tables] == ["recall by box height:", "recall by visible fraction:", "recall by border cut-off:"]
    for start, end in zip(tables, [*tables[1:], len(lines)]):
        rows = lines[start + 1 : end]
        assert sum(int(row.split()[-1]) for row in rows) == total  # every person in one bin of each table


def test_a_missing_run_is_one_line(breakdown, tmp_path, capsys):
    assert breakdown.main(["--workdir", str(tmp_path), "--seeds", "5"]) == 2
    err = capsys.readouterr().err
    assert "seed5: no scored run" in err and len(err.strip().splitlines()) == 1
