"""Pose metrics on hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from comotion.eval.pose_metrics import (
    box_normaliser,
    keypoint_box,
    mpjpe,
    pa_mpjpe,
    pck,
    pck_3d,
    procrustes_align,
)


def test_box_normaliser_is_longer_side():
    np.testing.assert_allclose(box_normaliser(np.array([[10, 20, 110, 220], [0, 0, 50, 30]])), [200, 50])


def test_pck_by_hand():
    # box 100 x 200 -> normaliser 200; errors 5, 10, 20, 25 px (and one unlabelled joint with error 0)
    gt = np.zeros((1, 5, 2))
    pred = np.array([[[5, 0], [0, 10], [12, 16], [0, 25], [0, 0]]], float)
    valid = np.array([[True, True, True, True, False]])
    norm = box_normaliser(np.array([[0, 0, 100, 200]]))
    assert pck(pred, gt, valid, norm, 0.05).tolist() == [0.5]  # limit 10 px, inclusive
    assert pck(pred, gt, valid, norm, 0.1).tolist() == [0.75]  # limit 20 px


def test_pck_without_valid_joints_is_nan():
    assert math.isnan(pck(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), np.zeros((1, 2), bool), np.array([10.0]), 0.1)[0])


def test_keypoint_box():
    kp = np.array([[[1, 5], [3, 2], [100, 100]]], float)
    np.testing.assert_allclose(keypoint_box(kp, np.array([[True, True, False]])), [[1, 2, 3, 5]])


def test_mpjpe_is_pelvis_centred():
    gt = np.array([[[0, 0, 0], [1, 0, 0]]], float)
    pred = np.array([[[5, 5, 5], [6, 5.3, 5]]], float)  # translated; joint 1 off by 0.3 relative to the pelvis
    assert mpjpe(pred, gt, np.ones((1, 2), bool)) == pytest.approx([0.15])
    # hip-centred root (mean of joints 0 and 1): both joints off by 0.15
    assert mpjpe(pred, gt, np.ones((1, 2), bool), root=(0, 1)) == pytest.approx([0.15])


def test_pa_mpjpe_removes_similarity_transforms():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(2, 8, 3))
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    pred = 2.5 * gt @ rotation.T + np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(pa_mpjpe(pred, gt, np.ones((2, 8), bool)), 0.0, atol=1e-12)
    np.testing.assert_allclose(procrustes_align(pred, gt, np.ones((2, 8), bool)), gt, atol=1e-12)


def test_pa_mpjpe_saddle_by_hand():
    # Square in the z=0 plane vs the same square lifted into a saddle z = d*x*y (d = 1): the best
    # similarity keeps the rotation, scales by 8 / (8 + 4 d^2) = 2/3; every joint is then
    # off by sqrt(2 (1/3)^2 + (2/3)^2) = sqrt(6)/3.
    xy = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], float)
    gt = np.concatenate([xy, np.zeros((4, 1))], axis=1)[None]
    pred = np.concatenate([xy, (xy[:, 0] * xy[:, 1])[:, None]], axis=1)[None]
    assert pa_mpjpe(pred, gt, np.ones((1, 4), bool)) == pytest.approx([math.sqrt(6) / 3])


def test_pa_mpjpe_excludes_reflections():
    gt = np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]], float)
    mirrored = gt * np.array([-1, 1, 1])
    assert pa_mpjpe(mirrored, gt, np.ones((1, 4), bool))[0] > 0.1


def test_pck_3d_threshold_inclusive():
    gt = np.zeros((1, 4, 3))
    pred = np.array([[[0, 0, 0], [0.05, 0, 0], [0, 0.1, 0], [0, 0, 0.2]]])
    assert pck_3d(pred, gt, np.ones((1, 4), bool), 0.1) == pytest.approx([0.75])
