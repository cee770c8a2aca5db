"""Dataset / result-file readers on tiny hand-written files, including malformed ones."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from comotion.errors import InputError
from comotion.eval.tracking import box_iou, evaluate_tracking
from comotion.eval.tracking_data import (
    find_sequence_root,
    read_gt_file,
    read_image_info,
    read_result_file,
)


def image_info(num_images, regions_x=None, regions_y=None):
    return [
        {
            "file_name": f"images/val/seq/{i:06d}.jpg",
            "frame_index": i + 1,
            "ignore_regions_x": regions_x if regions_x is not None else [],
            "ignore_regions_y": regions_y if regions_y is not None else [],
        }
        for i in range(num_images)
    ]


def make_dataset(root, sequences):
    """sequences: {name: (image_info list, gt text)} in the PoseTrack21 MOT layout."""
    for name, (info, gt) in sequences.items():
        folder = root / "posetrack_mot" / "mot" / "val" / name
        (folder / "gt").mkdir(parents=True)
        (folder / "image_info.json").write_text(json.dumps(info))
        (folder / "gt" / "gt.txt").write_text(gt)
    return root


GT = "1,1,10,10,100,200,1,-1,-1,-1\n2,1,12,10,100,200,1,-1,-1,-1\n3,1,14,10,100,200,1,-1,-1,-1\n"


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / "data", {"seq_a": (image_info(4), GT)})


def test_find_sequence_root_at_any_level(dataset):
    val = dataset / "posetrack_mot" / "mot" / "val"
    for level in (dataset, dataset / "posetrack_mot", dataset / "posetrack_mot" / "mot", val):
        assert find_sequence_root(level) == val


def test_gt_truncation_flag_and_duplicates(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,10.9,20.5,30.7,40.2,1,-1,-1,-1\n1,2,0,0,5,5,0,-1,-1,-1\n2,1,1,1,2,2,1\n2,1,3,3,4,4,1\n")
    frames = read_gt_file(path, 3)
    assert frames[0].ids.tolist() == [1]  # flag 0 dropped
    np.testing.assert_array_equal(frames[0].boxes, [[10, 20, 40, 60]])  # int(x), int(y), +int(w), +int(h)
    np.testing.assert_array_equal(frames[1].boxes, [[3, 3, 7, 7]])  # last duplicate wins
    assert len(frames[2]) == 0


def test_result_plus_one_decoding_and_out_of_range_frames(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("1,5,11,21,31,41,0.9,0,0,0\n9,5,1,1,2,2,1\n2,5,1,1,2,2,1\n2,5,2,2,3,3,1\n")
    frames = read_result_file(path, 3)
    np.testing.assert_allclose(frames[0].boxes, [[10, 20, 40, 60]])  # [x-1, y-1, (x-1)+(w-1), (y-1)+(h-1)]
    np.testing.assert_allclose(frames[1].boxes, [[1, 1, 3, 3]])  # last duplicate wins
    assert sum(len(f) for f in frames) == 2  # frame 9 is outside the sequence and ignored


def test_missing_or_empty_result_file_means_no_predictions(tmp_path):
    assert all(len(f) == 0 for f in read_result_file(tmp_path / "nope.txt", 2))
    (tmp_path / "empty.txt").write_text("")
    assert all(len(f) == 0 for f in read_result_file(tmp_path / "empty.txt", 2))


def test_ignore_region_layouts(tmp_path):
    path = tmp_path / "image_info.json"
    info = image_info(2, regions_x=[[0, 10, 10], []], regions_y=[[0, 0, 10], []])
    info[1]["ignore_regions_x"], info[1]["ignore_regions_y"] = [0, 5, 5, 0], [0, 0, 5, 5]  # flat = one polygon
    path.write_text(json.dumps(info))
    regions = read_image_info(path)
    assert [len(r) for r in regions] == [1, 1]  # empty inner list skipped
    assert regions[1][0].shape == (4, 2)


def test_box_iou_hand_values():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]]))
    np.testing.assert_allclose(iou, [[50 / 150, 0.0, 1.0]])


def test_sequence_scores_with_plus_one_predictions(dataset, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    # GT boxes written in the +1 convention: perfect; one extra box on the unannotated image 4
    lines = ["1,7,11,11,101,201,1", "2,7,13,11,101,201,1", "3,7,15,11,101,201,1", "4,8,11,11,101,201,1"]
    (results / "seq_a").write_text("\n".join(lines) + "\n")  # the name without .txt is found first
    fixed = evaluate_tracking(dataset, results, "posetrack21").per_sequence["seq_a"]
    assert fixed["mota"] == 1.0 and fixed["motp"] == 0.0 and fixed["num_frames"] == 3
    plain = evaluate_tracking(dataset, results, "mot").per_sequence["seq_a"]
    assert plain["num_false_positives"] == 1 and plain["num_frames"] == 4
    assert plain["mota"] == pytest.approx(1 - 1 / 3) and plain["hota"] < 1.0


def test_no_result_file_scores_all_misses(dataset, tmp_path):
    (tmp_path / "empty_results").mkdir()
    report = evaluate_tracking(dataset, tmp_path / "empty_results", "posetrack21")
    m = report.per_sequence["seq_a"]
    assert m["num_misses"] == 3 and m["mota"] == 0.0 and math.isnan(m["precision"])
    assert report.notes and "seq_a" in report.notes[0]


# ----------------------------------------------------------------------------------------------
# Malformed input: one-line InputError naming the file and the field / line


def _error(call) -> str:
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_frame_index(tmp_path):
    info = image_info(2)
    del info[1]["frame_index"]
    (tmp_path / "image_info.json").write_text(json.dumps(info))
    message = _error(lambda: read_image_info(tmp_path / "image_info.json"))
    assert "image_info.json" in message and "frame_index" in message and "image 1" in message


def test_wrong_frame_numbering(tmp_path):
    info = image_info(3)
    info[2]["frame_index"] = 7
    (tmp_path / "image_info.json").write_text(json.dumps(info))
    message = _error(lambda: read_image_info(tmp_path / "image_info.json"))
    assert "frame_index 7" in message and "expected 3" in message


def test_polygon_with_two_points(tmp_path):
    (tmp_path / "image_info.json").write_text(json.dumps(image_info(1, [[0, 5]], [[0, 5]])))
    assert "2 vertices" in _error(lambda: read_image_info(tmp_path / "image_info.json"))


def test_mismatched_polygon_coordinates(tmp_path):
    (tmp_path / "image_info.json").write_text(json.dumps(image_info(1, [[0, 5, 5]], [[0, 5]])))
    assert "ignore region 0" in _error(lambda: read_image_info(tmp_path / "image_info.json"))


def test_invalid_json(tmp_path):
    (tmp_path / "image_info.json").write_text("[{")
    assert "not valid JSON" in _error(lambda: read_image_info(tmp_path / "image_info.json"))


@pytest.mark.parametrize(
    "text, needle",
    [
        ("1,1,10,10,5,5,1\n\n2,1,10,10,5,5,1\n", "line 2 is blank"),
        ("1,1,abc,10,5,5,1\n", "line 1: x is not a number"),
        ("1,1,10,10,5\n", "line 1 has 5 columns"),
        ("1.5,1,10,10,5,5,1\n", "line 1: frame must be an integer"),
        ("9,1,10,10,5,5,1\n", "line 1: frame 9 is not an image"),
        ("1,1,10,nan,5,5,1\n", "line 1: y is not finite"),
    ],
)
def test_malformed_gt_lines(tmp_path, text, needle):
    path = tmp_path / "gt.txt"
    path.write_text(text)
    message = _error(lambda: read_gt_file(path, 3))
    assert str(path) in message and needle in message


def test_malformed_result_line(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("1,1,10,10,5,5,1\n2,x,10,10,5,5,1\n")
    message = _error(lambda: read_result_file(path, 3))
    assert str(path) in message and "line 2: id" in message


def test_trailing_blank_lines_are_fine(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("1,1,10,10,5,5,1\n\n\n")
    assert len(read_result_file(path, 1)[0]) == 1


def test_unknown_sequence_in_results(dataset, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "seq_b.txt").write_text("1,1,10,10,5,5,1\n")
    message = _error(lambda: evaluate_tracking(dataset, results, "posetrack21"))
    assert "unknown sequence" in message and "seq_b.txt" in message


def test_missing_dataset_and_protocol(tmp_path, dataset):
    assert "dataset folder not found" in _error(lambda: evaluate_tracking(tmp_path / "nope", tmp_path, "mot"))
    assert "no sequence folder" in _error(lambda: evaluate_tracking(tmp_path, tmp_path, "mot"))
    assert "unknown protocol" in _error(lambda: evaluate_tracking(dataset, tmp_path, "clear"))


def test_sequence_without_gt_is_skipped_and_its_results_accepted(dataset, tmp_path):
    (dataset / "posetrack_mot" / "mot" / "val" / "seq_nogt").mkdir()
    results = tmp_path / "results"
    results.mkdir()
    (results / "seq_nogt.txt").write_text("1,1,10,10,5,5,1\n")
    report = evaluate_tracking(dataset, results, "mot")
    assert list(report.per_sequence) == ["seq_a"]
