"""Each tracking metric on tiny hand-made frame sequences (numbers worked out by hand)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from comotion.eval import mot_metrics as mm
from comotion.eval.accumulator import EventType, MotAccumulator, min_cost_pairs

NAN = np.nan


def run(frames):
    """frames: list of (object_ids, hypothesis_ids, distances[, ignore_candidates])."""
    acc = MotAccumulator()
    for frame in frames:
        acc.update(*frame)
    return acc.events()


def kinds(ev, frame):
    return [EventType(k).name for k in ev.kind[ev.frame == frame]]


def test_perfect_tracking():
    ev = run([([1, 2], [10, 20], [[0.1, NAN], [NAN, 0.3]])] * 3)
    s = mm.summarize(ev)
    assert s["mota"] == 1.0 and s["num_matches"] == 6 and s["num_objects"] == 6 and s["num_frames"] == 3
    assert s["motp"] == pytest.approx((0.1 + 0.3) / 2)
    assert s["idf1"] == s["idp"] == s["idr"] == 1.0
    assert (s["mostly_tracked"], s["partially_tracked"], s["mostly_lost"]) == (2, 0, 0)


def test_previous_pairing_is_kept_over_cheaper_one():
    # frame 0: 1-10 paired.  frame 1: 1 is closer to 11 (0.1) but keeps 10 (0.4); 11 is a FP.
    ev = run([([1], [10], [[0.2]]), ([1], [10, 11], [[0.4, 0.1]])])
    assert kinds(ev, 1) == ["MATCH", "FP"]
    assert mm.num_switches(ev) == 0 and mm.num_false_positives(ev) == 1
    assert mm.motp(ev) == pytest.approx(0.3)


def test_assignment_maximises_number_of_pairs_first():
    # 1-10 is the cheapest pair, but taking it leaves 2 unpaired; two pairs win.
    rows, cols = min_cost_pairs(np.array([[0.1, 0.3], [0.2, NAN]]))
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]


def test_switch_ascend_transfer_migrate():
    frames = [
        ([1, 2], [10, 20], [[0.1, NAN], [NAN, 0.1]]),  # 1-10, 2-20
        ([1, 2], [30, 10], [[0.1, NAN], [NAN, 0.1]]),  # 1 -> new track 30 (switch+ascend); 10 -> object 2 (switch, transfer)
        ([1, 3], [30, 20], [[0.1, NAN], [NAN, 0.1]]),  # track 20 moves to never-paired object 3 (transfer+migrate)
    ]
    ev = run(frames)
    assert sorted(kinds(ev, 1)) == ["ASCEND", "SWITCH", "SWITCH", "TRANSFER"]
    assert sorted(kinds(ev, 2)) == ["MATCH", "MATCH", "MIGRATE", "TRANSFER"]
    s = mm.summarize(ev)
    assert (s["num_switches"], s["num_ascend"], s["num_transfer"], s["num_migrate"]) == (2, 1, 2, 1)
    assert s["num_detections"] == 6 and s["num_matches"] == 4
    assert s["mota"] == pytest.approx(1 - 2 / 6)


def test_misses_false_positives_mota_precision_recall():
    ev = run([([1, 2], [10, 11], [[0.2, NAN], [NAN, NAN]]), ([1, 2], [], np.zeros((2, 0)))])
    s = mm.summarize(ev)
    assert (s["num_misses"], s["num_false_positives"], s["num_detections"], s["num_objects"]) == (3, 1, 1, 4)
    assert s["mota"] == pytest.approx(1 - 4 / 4)
    assert s["recall"] == pytest.approx(1 / 4) and s["precision"] == pytest.approx(1 / 2)
    assert s["num_predictions"] == 2


def test_fragmentations_count_only_interruptions_inside_the_paired_span():
    # object 1: miss, hit, miss, miss, hit, miss -> one interruption (trailing/leading misses excluded)
    pattern = [False, True, False, False, True, False]
    frames = [([1], [10] if hit else [], [[0.1]] if hit else np.zeros((1, 0))) for hit in pattern]
    ev = run(frames)
    assert mm.num_fragmentations(ev) == 1
    # an object absent from frames (no GT row) is not interrupted
    ev = run([([1], [10], [[0.1]]), ([], [], np.zeros((0, 0))), ([1], [10], [[0.1]])])
    assert mm.num_fragmentations(ev) == 0


def test_mostly_tracked_boundaries():
    # object 1 paired 4/5 = 0.8 -> MT; object 2 paired 1/5 = 0.2 -> PT; object 3 never -> ML
    frames = []
    for t in range(5):
        ids = [1, 2, 3]
        d = np.full((3, 2), NAN)
        if t < 4:
            d[0, 0] = 0.1
        if t == 0:
            d[1, 1] = 0.1
        frames.append((ids, [10, 20], d))
    s = mm.summarize(run(frames))
    assert (s["mostly_tracked"], s["partially_tracked"], s["mostly_lost"]) == (1, 1, 1)
    assert s["num_unique_objects"] == 3


def test_identity_metrics_by_hand():
    # object 1 is covered by track 10 for 3 frames then by track 20 for 1 frame.
    frames = [([1], [10], [[0.1]])] * 3 + [([1], [20], [[0.1]])]
    s = mm.summarize(run(frames))
    assert (s["idtp"], s["idfn"], s["idfp"]) == (3, 1, 1)
    assert s["idp"] == pytest.approx(3 / 4) and s["idr"] == pytest.approx(3 / 4)
    assert s["idf1"] == pytest.approx(2 * 3 / (4 + 4))


def test_identity_counts_potential_matches_not_only_pairings():
    # track 20 overlaps object 1 on both frames but is never paired (10 keeps it): still an IDTP candidate
    frames = [([1], [10, 20], [[0.1, 0.3]]), ([1], [20], [[0.3]])]
    ev = run(frames)
    assert mm.id_true_positives(ev) == 2  # global assignment 1 <-> 20 covers both frames


def test_unpaired_ignore_candidate_vanishes():
    ev = run([([1], [10, 99], [[0.1, NAN]], [False, True])])
    s = mm.summarize(ev)
    assert s["num_false_positives"] == 0 and s["num_predictions"] == 1
    assert s["idfp"] == 0  # not present at all
    assert s["precision"] == 1.0


def test_ignore_candidate_with_overlap_stays_present():
    # 99 overlaps object 1 (allowed) but 10 is closer: unpaired candidate -> no FP, still present for IDP
    ev = run([([1], [10, 99], [[0.1, 0.4]], [False, True])] * 2)
    s = mm.summarize(ev)
    assert s["num_false_positives"] == 0 and s["num_predictions"] == 2
    assert (s["idtp"], s["idfp"]) == (2, 2)
    assert s["idp"] == pytest.approx(0.5) and s["idr"] == 1.0
    assert s["idf1"] == pytest.approx(1.0)  # 2*IDTP / (objects + predictions): not the harmonic mean of IDP and IDR


def test_paired_ignore_candidate_is_an_ordinary_match():
    s = mm.summarize(run([([1], [10], [[0.2]], [True])]))
    assert s["num_matches"] == 1 and s["num_false_positives"] == 0 and s["idp"] == 1.0


def test_empty_sequence_gives_nan_ratios():
    s = mm.summarize(run([([1, 2], [], np.zeros((2, 0)))]))
    assert math.isnan(s["precision"]) and math.isnan(s["idp"]) and math.isnan(s["motp"])
    assert s["mota"] == 0.0 and s["recall"] == 0.0 and s["idf1"] == 0.0


def test_combine_summaries_micro_average_and_nan_motp():
    a = mm.summarize(run([([1], [10], [[0.2]])]))
    b = mm.summarize(run([([1], [10], [[0.4]])] * 3))
    both = mm.combine_summaries([a, b])
    assert both["num_objects"] == 4 and both["num_frames"] == 4 and both["idtp"] == 4
    assert both["motp"] == pytest.approx((0.2 + 3 * 0.4) / 4)
    empty = mm.summarize(run([([1], [], np.zeros((1, 0)))]))
    combined = mm.combine_summaries([a, empty])
    assert math.isnan(combined["motp"])  # the official OVERALL MOTP behaviour
    assert combined["mota"] == pytest.approx(1 - 1 / 2) and combined["precision"] == 1.0
