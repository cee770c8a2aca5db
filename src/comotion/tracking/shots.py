"""Shot-cut detection from frame content, as PySceneDetect's ``ContentDetector`` (0.6 line).

The content score of a frame is the weighted mean of the mean absolute per-pixel differences,
against the previous frame, of hue, saturation and value (OpenCV's 8-bit HSV: hue 0-179) and of a
dilated Canny edge map.  A cut is reported when the score reaches ``threshold`` and at least
``min_scene_len`` frames passed since the previous cut (or the first frame).

The reference tracker feeds such a detector but never acts on it (quirk Q3); the tracker uses this
one only with ``TrackerConfig.shot_cut_reset``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch


@dataclass(frozen=True)
class ContentWeights:
    """Weights of the four score components (PySceneDetect's defaults: edges off)."""

    hue: float = 1.0
    saturation: float = 1.0
    value: float = 1.0
    edges: float = 0.0


def _mean_pixel_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).sum()) / float(a.shape[0] * a.shape[1])


def edge_kernel_size(height: int, width: int) -> int:
    """Odd dilation kernel side growing with the image: 4 + round(sqrt(H W) / 192), made odd."""
    size = 4 + round(math.sqrt(width * height) / 192)
    return size + 1 if size % 2 == 0 else size


def detect_edges(value: np.ndarray) -> np.ndarray:
    """Dilated Canny edges ``(H, W)`` uint8 of an 8-bit channel, thresholds from its median."""
    median = float(np.median(value))
    low = int(max(0, (1.0 - 1.0 / 3.0) * median))
    high = int(min(255, (1.0 + 1.0 / 3.0) * median))
    edges = cv2.Canny(value, low, high)
    kernel = np.ones((edge_kernel_size(*value.shape),) * 2, np.uint8)
    return cv2.dilate(edges, kernel)


def as_rgb_uint8(image) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB from a ``(3, H, W)`` tensor (uint8, or float in [0, 1]) or an ``(H, W, 3)`` array."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        if image.dtype.is_floating_point:
            image = (image.clamp(0, 1) * 255).round().to(torch.uint8)
        image = image.permute(1, 2, 0).numpy()
    return np.ascontiguousarray(image, dtype=np.uint8)


class ShotDetector:
    """Stateful cut detector: call :meth:`process` once per frame, in order.

    Args:
        threshold: content score (0-255 scale) at or above which a frame starts a new shot.
        min_scene_len: frames that must pass after a cut (or the first frame) before the next.
        weights: weights of the hue / saturation / value / edge differences.
    """

    def __init__(self, threshold: float = 50.0, min_scene_len: int = 3, weights: ContentWeights = ContentWeights()):
        self.threshold = threshold
        self.min_scene_len = min_scene_len
        self.weights = weights
        self.reset()

    def reset(self) -> None:
        self._previous: tuple[np.ndarray, ...] | None = None
        self._frame_number = 0
        self._last_cut = 0
        self.last_score = 0.0

    def _components(self, rgb: np.ndarray) -> tuple[np.ndarray, ...]:
        hue, saturation, value = cv2.split(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV))
        edges = detect_edges(value) if self.weights.edges else None
        return hue, saturation, value, edges

    def score(self, image) -> float:
        """Content score of ``image`` against the previous frame (0 for the first), and remember it."""
        current = self._components(as_rgb_uint8(image))
        previous, self._previous = self._previous, current
        if previous is None:
            return 0.0
        weights = (self.weights.hue, self.weights.saturation, self.weights.value, self.weights.edges)
        total = sum(
            w * _mean_pixel_distance(a, b) for w, a, b in zip(weights, current, previous) if w and a is not None
        )
        return total / sum(abs(w) for w in weights)

    def process(self, image) -> bool:
        """Whether ``image`` (the next frame) starts a new shot; its score is kept in ``last_score``."""
        frame_number = self._frame_number
        self._frame_number += 1
        score = self.last_score = self.score(image)
        if score >= self.threshold and frame_number - self._last_cut >= self.min_scene_len:
            self._last_cut = frame_number
            return True
        return False
