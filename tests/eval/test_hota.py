"""HOTA on hand-worked sequences."""

from __future__ import annotations

import numpy as np
import pytest

from comotion.eval.hota import ALPHAS, HotaFrame, combine_hota, hota_sequence


def frame(gt, tr, sim):
    return HotaFrame(np.array(gt), np.array(tr), np.array(sim, float).reshape(len(gt), len(tr)))


def test_alphas():
    assert len(ALPHAS) == 19 and ALPHAS[0] == pytest.approx(0.05) and ALPHAS[-1] == pytest.approx(0.95)


def test_single_pair_iou_06():
    # TP for the 12 alphas <= 0.6, otherwise one FN and one FP; association is perfect where matched.
    result = hota_sequence([frame([1], [7], [[0.6]])])
    summary = result.summary()
    matched = ALPHAS <= 0.6 + 1e-12
    assert matched.sum() == 12
    np.testing.assert_allclose(result.arrays["HOTA"], np.where(matched, 1.0, 0.0))
    assert summary["HOTA"] == pytest.approx(12 / 19)
    assert summary["DetA"] == pytest.approx(12 / 19)
    assert summary["AssA"] == pytest.approx(12 / 19)
    # LocA is the mean IoU of TPs, 1 where there are none (TrackEval's 1e-10 / 1e-10)
    assert summary["LocA"] == pytest.approx((12 * 0.6 + 7 * 1.0) / 19)
    assert summary["HOTA(0)"] == 1.0 and summary["LocA(0)"] == pytest.approx(0.6)
    assert summary["HOTALocA(0)"] == pytest.approx(0.6)


def test_identity_split_halves_association():
    # one person, tracked by id 7 then id 8: every detection matches, AssA = 1/2, AssPr = 1, AssRe = 1/2
    result = hota_sequence([frame([1], [7], [[1.0]]), frame([1], [8], [[1.0]])])
    s = result.summary()
    assert s["DetA"] == 1.0 and s["DetRe"] == 1.0 and s["DetPr"] == 1.0
    assert s["AssA"] == pytest.approx(0.5) and s["AssRe"] == pytest.approx(0.5) and s["AssPr"] == pytest.approx(1.0)
    assert s["HOTA"] == pytest.approx(np.sqrt(0.5)) and s["OWTA"] == pytest.approx(np.sqrt(0.5))


def test_frames_without_gt_or_tracks():
    # frame 0: one FP only; frame 1: one FN only; frame 2: a perfect match
    result = hota_sequence([frame([], [7], []), frame([1], [], []), frame([1], [7], [[1.0]])])
    assert result.arrays["HOTA_TP"][0] == 1 and result.arrays["HOTA_FN"][0] == 1 and result.arrays["HOTA_FP"][0] == 1
    assert result.summary()["DetA"] == pytest.approx(1 / 3)
    # track 7 appears twice and person 1 twice, matched once: A = 1 / (2 + 2 - 1)
    assert result.summary()["AssA"] == pytest.approx(1 / 3)


def test_empty_tracker_and_empty_gt():
    no_tracks = hota_sequence([frame([1, 2], [], [])]).summary()
    assert no_tracks["HOTA"] == 0.0 and no_tracks["LocA"] == 1.0 and no_tracks["DetRe"] == 0.0
    no_gt = hota_sequence([frame([], [3], [])])
    assert no_gt.arrays["HOTA_FP"][0] == 1 and no_gt.summary()["HOTA"] == 0.0


def test_combine_weights_association_by_true_positives():
    a = hota_sequence([frame([1], [7], [[1.0]]), frame([1], [8], [[1.0]])])  # AssA 0.5, 2 TPs
    b = hota_sequence([frame([1], [7], [[1.0]])] * 2)  # AssA 1, 2 TPs
    combined = combine_hota([a, b]).summary()
    assert combined["AssA"] == pytest.approx(0.75)
    assert combined["DetA"] == 1.0
