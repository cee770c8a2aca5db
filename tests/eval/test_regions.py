"""Ignore regions: fraction of the box, per polygon, strict threshold with the float32 quirk, repair."""

from __future__ import annotations

import numpy as np
import pytest

from comotion.eval.regions import ignore_candidates, ignore_fractions, repair_polygons


def square(x1, y1, x2, y2):
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], float)


def test_fraction_is_of_the_box_not_iou():
    # a 10x10 box inside a 1000x1000 region: fraction 1 (the IoU would be 1e-4)
    polygons = repair_polygons([square(0, 0, 1000, 1000)])
    boxes = np.array([[100, 100, 110, 110]], float)
    assert ignore_fractions(polygons, boxes)[0, 0] == pytest.approx(1.0)
    assert ignore_candidates(polygons, boxes).tolist() == [True]


def test_per_polygon_not_union():
    # two adjacent regions each covering 6 % of the box (12 % together): not a candidate
    box = np.array([[0, 0, 100, 100]], float)
    polygons = repair_polygons([square(-50, 0, 6, 100), square(94, 0, 150, 100)])
    np.testing.assert_allclose(ignore_fractions(polygons, box)[:, 0], [0.06, 0.06])
    assert ignore_candidates(polygons, box).tolist() == [False]


def test_threshold_is_strict_and_float32_rounded():
    box = np.array([[0, 0, 100, 100]], float)
    exactly = repair_polygons([square(0, 0, 10, 100)])  # fraction exactly 0.1 -> float32 0.10000000149 > 0.1
    assert ignore_candidates(exactly, box).tolist() == [True]
    below = repair_polygons([square(0, 0, 9.99, 100)])
    assert ignore_candidates(below, box).tolist() == [False]


def test_bowtie_keeps_one_lobe():
    # self-intersecting ring (40,200)-(240,420)-(240,200)-(40,420): buffer(0) keeps the right lobe
    bowtie = np.array([[40, 200], [240, 420], [240, 200], [40, 420]], float)
    polygons = repair_polygons([bowtie])
    right = np.array([[200, 290, 230, 330]], float)
    left = np.array([[50, 290, 80, 330]], float)
    assert ignore_candidates(polygons, right).tolist() == [True]
    assert ignore_candidates(polygons, left).tolist() == [False]


def test_collinear_polygon_never_ignores():
    polygons = repair_polygons([np.array([[0, 0], [50, 50], [100, 100]], float)])
    assert ignore_candidates(polygons, np.array([[0, 0, 100, 100]], float)).tolist() == [False]


def test_zero_area_box_is_never_a_candidate():
    polygons = repair_polygons([square(0, 0, 100, 100)])
    boxes = np.array([[10, 10, 10, 20], [10, 10, 20, 20]], float)
    assert ignore_candidates(polygons, boxes).tolist() == [False, True]


def test_threshold_parameter():
    # 20 % of the box inside: a candidate at 0.1 (the released evaluation), not at 0.3 (the paper's text)
    polygons = repair_polygons([square(0, 0, 20, 100)])
    box = np.array([[0, 0, 100, 100]], float)
    assert ignore_candidates(polygons, box, 0.1).tolist() == [True]
    assert ignore_candidates(polygons, box, 0.3).tolist() == [False]
