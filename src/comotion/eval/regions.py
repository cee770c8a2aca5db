"""Ignore regions: polygon repair and the per-polygon "fraction of the box" test.

The CoMotion paper (appendix A.1) fixed the PoseTrack21 rule: an unmatched prediction is not a
false positive when, for at least one ignore polygon, ``area(polygon ∩ box) / area(box) > 0.1``.
The original code divided by the union (an IoU), so a person box inside a large crowd region was
still a false positive.
"""

from __future__ import annotations

import numpy as np
import shapely

IGNORE_FRACTION_THRESHOLD = 0.1


def repair_polygons(regions: list[np.ndarray]) -> np.ndarray:
    """Shapely polygons ``(R,)`` from vertex arrays ``[(K, 2), ...]`` pixels.

    Invalid rings are repaired with GEOS ``buffer(0)`` like the official evaluation: a bow-tie keeps
    only one lobe, a collinear ring becomes empty (and never ignores anything).
    """
    polygons = np.array([shapely.Polygon(vertices) for vertices in regions], dtype=object)
    if len(polygons):
        invalid = ~shapely.is_valid(polygons)
        polygons[invalid] = shapely.buffer(polygons[invalid], 0)
    return polygons


def ignore_fractions(polygons: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``area(polygon ∩ box) / area(box)`` for every polygon and box: ``(R, N)``.

    Args:
        polygons: ``(R,)`` shapely polygons (see :func:`repair_polygons`).
        boxes: ``(N, 4)`` ``[x1, y1, x2, y2]`` pixels.  Boxes without positive area get fraction 0.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    fractions = np.zeros((len(polygons), len(boxes)))
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    proper = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if len(polygons) and proper.any():
        rectangles = shapely.box(*boxes[proper].T)
        overlap = shapely.area(shapely.intersection(polygons[:, None], rectangles[None, :]))
        fractions[:, proper] = overlap / areas[proper]
    return fractions


def ignore_candidates(polygons: np.ndarray, boxes: np.ndarray, threshold: float = IGNORE_FRACTION_THRESHOLD) -> np.ndarray:
    """Which boxes ``(N,)`` lie in an ignore region: some single polygon covers more than
    ``threshold`` of the box (strictly greater, polygon by polygon, never their union).

    The fraction is rounded to float32 before the (float64) comparison, as in the official
    evaluation: a fraction of exactly 0.1 becomes 0.10000000149 and counts as inside.
    """
    fractions = ignore_fractions(polygons, boxes).astype(np.float32).astype(np.float64)
    return (fractions > float(threshold)).any(axis=0)
