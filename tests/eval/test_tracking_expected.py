"""Reproduce every number of ``metrics/expected.json`` (the official PoseTrack21 evaluation,
py-motmetrics 1.4.0 and TrackEval 1.3.0) for every tracker folder and sequence it lists."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from comotion.eval.hota import combine_hota
from comotion.eval.mot_metrics import COUNT_FIELDS
from comotion.eval.regions import ignore_fractions, repair_polygons
from comotion.eval.tracking import evaluate_sequence, evaluate_tracking
from comotion.eval.tracking_data import (
    find_sequence_root,
    read_result_file,
    read_sequence,
    result_file_for,
)

TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def expected(metrics_dir):
    return json.loads((metrics_dir / "expected.json").read_text())


def _mismatches(where: str, reference: dict, ours: dict) -> list[str]:
    """Compare every key of ``reference``: counts exactly, floats to 1e-9, null <-> NaN."""
    problems = []
    for key, ref in reference.items():
        if key not in ours:
            problems.append(f"{where}: {key} missing")
            continue
        value = ours[key]
        if ref is None:
            if not (isinstance(value, float) and math.isnan(value)):
                problems.append(f"{where}: {key} = {value}, expected NaN")
        elif key in COUNT_FIELDS:
            if not isinstance(value, (int, np.integer)) or value != ref:
                problems.append(f"{where}: {key} = {value!r}, expected the count {ref}")
        elif not (abs(float(value) - ref) <= TOLERANCE):
            problems.append(f"{where}: {key} = {value!r}, expected {ref}")
    return problems


def test_expected_lists_trackers_and_sequences(expected):
    assert expected["trackers"] and expected["sequences_evaluated"]


@pytest.mark.parametrize("protocol, block", [("posetrack21", "posetrack21_fixed"), ("mot", "plain_mot")])
def test_motmetrics_numbers(metrics_dir, expected, protocol, block):
    problems = []
    for tracker, data in expected["trackers"].items():
        report = evaluate_tracking(metrics_dir / "dataset", metrics_dir / data["result_path"], protocol)
        reference = data[block] if protocol == "posetrack21" else data[block]["motmetrics"]
        assert sorted(report.per_sequence) == sorted(expected["sequences_evaluated"])
        problems += _mismatches(f"{tracker}/OVERALL", reference["overall"], report.overall)
        for seq, ref in reference["per_sequence"].items():
            problems += _mismatches(f"{tracker}/{seq}", ref, report.per_sequence[seq])
    assert not problems, "\n".join(problems)


def test_overall_motp_note(metrics_dir, expected):
    """The documented detection-weighted MOTP over sequences with detections."""
    for data in expected["trackers"].values():
        note = data["posetrack21_fixed"].get("overall_notes", {}).get("motp_weighted_over_sequences_with_detections")
        if note is None:
            continue
        report = evaluate_tracking(metrics_dir / "dataset", metrics_dir / data["result_path"], "posetrack21")
        rows = [m for m in report.per_sequence.values() if m["num_detections"] > 0]
        weighted = sum(m["motp"] * m["num_detections"] for m in rows) / sum(m["num_detections"] for m in rows)
        assert weighted == pytest.approx(note, abs=TOLERANCE)


def _hota_reference(block: dict) -> dict:
    return {k.lower(): v for k, v in block.items() if k != "per_alpha"}


def test_trackeval_numbers(metrics_dir, expected):
    """HOTA family (summary and per-alpha arrays) and TrackEval's identity/count blocks."""
    root = find_sequence_root(metrics_dir / "dataset")
    problems = []
    for tracker, data in expected["trackers"].items():
        reference = data["plain_mot"]["trackeval"]
        results = {}
        for seq, ref in reference["per_sequence"].items():
            sequence = read_sequence(root, seq)
            predictions = read_result_file(result_file_for(metrics_dir / data["result_path"], seq), sequence.num_images)
            results[seq] = result = evaluate_sequence(sequence, predictions, "mot")
            problems += _mismatches(f"{tracker}/{seq}/HOTA", _hota_reference(ref["HOTA"]), result.metrics)
            for name, values in ref["HOTA"]["per_alpha"].items():
                if name == "alpha":
                    continue
                ours = result.hota.arrays[name]
                if not np.allclose(ours, values, atol=TOLERANCE, rtol=0):
                    problems.append(f"{tracker}/{seq}/HOTA per-alpha {name}: {ours} != {values}")
            identity = {"IDTP": "idtp", "IDFN": "idfn", "IDFP": "idfp"}
            problems += _mismatches(
                f"{tracker}/{seq}/Identity", {ours: ref["Identity"][theirs] for theirs, ours in identity.items()}, result.metrics
            )
            count_names = {"GT_Dets": "num_objects", "GT_IDs": "num_unique_objects"}
            problems += _mismatches(
                f"{tracker}/{seq}/Count", {ours: ref["Count"][theirs] for theirs, ours in count_names.items()}, result.metrics
            )
        combined = combine_hota([r.hota for r in results.values()])
        summary = {k.lower(): v for k, v in combined.summary().items()}
        problems += _mismatches(f"{tracker}/COMBINED/HOTA", _hota_reference(reference["combined"]["HOTA"]), summary)
        for name, values in reference["combined"]["HOTA"]["per_alpha"].items():
            if name != "alpha" and not np.allclose(combined.arrays[name], values, atol=TOLERANCE, rtol=0):
                problems.append(f"{tracker}/COMBINED per-alpha {name}")
        report = evaluate_tracking(metrics_dir / "dataset", metrics_dir / data["result_path"], "mot")
        problems += _mismatches(f"{tracker}/OVERALL/HOTA", _hota_reference(reference["combined"]["HOTA"]), report.overall)
    assert not problems, "\n".join(problems)


def test_ignore_candidates_match_diagnostics(metrics_dir, expected):
    """Per annotated frame, the boxes with fraction > 0.1 and their fraction (diagnostics block)."""
    root = find_sequence_root(metrics_dir / "dataset")
    checked = 0
    for tracker, data in expected["trackers"].items():
        for seq, diag in data.get("diagnostics", {}).items():
            if "ignore_candidates_on_annotated_frames" not in diag:
                continue
            sequence = read_sequence(root, seq)
            predictions = read_result_file(result_file_for(metrics_dir / data["result_path"], seq), sequence.num_images)
            found = {}
            for image, (gt, pred, regions) in enumerate(zip(sequence.gt, predictions, sequence.ignore_regions)):
                if len(gt) == 0 or not regions or len(pred) == 0:
                    continue
                fractions = ignore_fractions(repair_polygons(regions), pred.boxes).max(axis=0)
                for track, fraction in zip(pred.ids.tolist(), fractions.tolist()):
                    if np.float64(np.float32(fraction)) > 0.1:
                        found[(image + 1, track)] = fraction
            reference = {(f, t): fr for f, t, fr in diag["ignore_candidates_on_annotated_frames"]}
            assert sorted(found) == sorted(reference), f"{tracker}/{seq}"
            for key, fraction in reference.items():
                assert found[key] == pytest.approx(fraction, abs=1e-5), f"{tracker}/{seq} {key}"
            checked += 1
    assert checked > 0


def test_line_order_does_not_matter(metrics_dir, expected, tmp_path):
    """Shuffling the lines of every gt.txt and result file leaves every number unchanged."""
    import random
    import shutil

    rng = random.Random(0)
    dataset = shutil.copytree(metrics_dir / "dataset", tmp_path / "dataset")
    for tracker, data in expected["trackers"].items():
        results = shutil.copytree(metrics_dir / data["result_path"], tmp_path / tracker)
        for path in list(results.iterdir()) + list(dataset.rglob("gt.txt")):
            lines = path.read_text().splitlines()
            rng.shuffle(lines)
            path.write_text("\n".join(lines) + "\n")
        for protocol in ("posetrack21", "mot"):
            original = evaluate_tracking(metrics_dir / "dataset", metrics_dir / data["result_path"], protocol)
            shuffled = evaluate_tracking(dataset, results, protocol)
            for name, metrics in original.per_sequence.items():
                for key, value in metrics.items():
                    other = shuffled.per_sequence[name][key]
                    assert other == pytest.approx(value, abs=1e-12, nan_ok=True), f"{tracker}/{protocol}/{name}/{key}"
