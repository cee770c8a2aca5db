"""Overlay rendering: 2D skeletons, shaded body meshes and a top-down view, colour per track id.

Everything works on ``(H, W, 3)`` uint8 RGB numpy images with OpenCV drawing; meshes are drawn
with the painter's algorithm (back-face culled triangles sorted far to near, Lambert shading with
a light at the camera), which is exact for separate convex-ish bodies and fast enough for a
preview.  Rendering is cosmetic and never affects the numeric outputs.
"""

from __future__ import annotations

import colorsys
import math
from fractions import Fraction
from pathlib import Path

import numpy as np

# Bones between CoMotion's 27 keypoints: the SMPL tree over joints 0-21, then head-nose,
# nose-eyes and eyes-ears.
SKELETON_27 = (
    (0, 1), (0, 2), (0, 3), (1, 4), (2, 5), (3, 6), (4, 7), (5, 8), (6, 9), (7, 10), (8, 11),
    (9, 12), (9, 13), (9, 14), (12, 15), (13, 16), (14, 17), (16, 18), (17, 19), (18, 20), (19, 21),
    (15, 22), (22, 23), (22, 24), (23, 25), (24, 26),
)  # fmt: skip


def id_color(track_id: int) -> tuple[int, int, int]:
    """A stable, well separated RGB colour for a track id (golden-ratio hue steps)."""
    hue = (int(track_id) * 0.6180339887) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_skeletons(
    image: np.ndarray, keypoints_2d: np.ndarray, track_ids: np.ndarray, thickness: int | None = None
) -> np.ndarray:
    """Draw ``keypoints_2d (N, 27, 2)`` pixel skeletons on a copy of ``image (H, W, 3)``."""
    import cv2

    canvas = np.ascontiguousarray(image).copy()
    if thickness is None:
        thickness = max(1, round(max(canvas.shape[:2]) / 400))
    points = np.round(np.nan_to_num(np.asarray(keypoints_2d, np.float64)) * 16).astype(np.int64)
    for track_id, kp in zip(np.asarray(track_ids), points):
        color = id_color(track_id)
        for a, b in SKELETON_27:
            cv2.line(canvas, tuple(map(int, kp[a])), tuple(map(int, kp[b])), color, thickness, cv2.LINE_AA, shift=4)
        for point in kp:
            cv2.circle(canvas, tuple(map(int, point)), 16 * (thickness + 1), color, -1, cv2.LINE_AA, shift=4)
    return canvas


def draw_meshes(
    image: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    K: np.ndarray,
    track_ids: np.ndarray,
    opacity: float = 0.8,
    min_depth: float = 0.05,
) -> np.ndarray:
    """Blend shaded meshes ``vertices (N, V, 3)`` (camera frame, metres) onto ``image``.

    ``faces (F, 3)`` index the vertices; ``K (2, 3)`` projects them to pixels.
    """
    import cv2

    canvas = np.ascontiguousarray(image).copy()
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    if vertices.size == 0:
        return canvas
    K = np.asarray(K, np.float64)
    tri = vertices[:, faces]  # (N, F, 3, 3)
    depth = tri[..., 2]
    uv = tri[..., :2] / np.maximum(depth, min_depth)[..., None] * K[[0, 1], [0, 1]] + K[:, 2]
    normal = np.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + 1e-12
    centre = tri.mean(axis=2)
    view = -centre / (np.linalg.norm(centre, axis=-1, keepdims=True) + 1e-12)
    facing = (normal * view).sum(-1)
    # Meshes may wind either way; keep the side that faces the camera for each body.
    sign = np.where((facing > 0).mean(axis=1, keepdims=True) >= 0.5, 1.0, -1.0)
    facing = facing * sign
    visible = (facing > 0) & (depth.min(axis=-1) > min_depth)
    person, face = np.nonzero(visible)
    order = np.argsort(-centre[person, face, 2], kind="stable")
    person, face = person[order], face[order]
    shade = 0.35 + 0.65 * facing[person, face]
    colors = np.array([id_color(t) for t in np.asarray(track_ids)], np.float64)[person] * shade[:, None]
    polygons = np.round(uv[person, face] * 16).astype(np.int32)
    layer = canvas.copy()
    mask = np.zeros(canvas.shape[:2], np.uint8)
    for polygon, color in zip(polygons, colors.astype(np.int64).tolist()):
        cv2.fillConvexPoly(layer, polygon, color, cv2.LINE_AA, shift=4)
        cv2.fillConvexPoly(mask, polygon, 255, cv2.LINE_8, shift=4)
    covered = mask > 0
    canvas[covered] = (opacity * layer[covered] + (1.0 - opacity) * canvas[covered]).round().astype(np.uint8)
    return canvas


def top_view(
    keypoints_3d: np.ndarray,
    track_ids: np.ndarray,
    K: np.ndarray,
    image_width: int,
    size: int,
    min_depth_range: float = 4.0,
) -> np.ndarray:
    """A ``(size, size, 3)`` bird's-eye panel: people's skeletons seen from above (x right, depth
    up), the camera at the bottom centre and its horizontal field of view as two lines.  The
    panel spans a quarter more than the farthest person, rounded up to 2 m (at least
    ``min_depth_range`` metres);
    ticks on the left mark metres."""
    import cv2

    panel = np.full((size, size, 3), 32, np.uint8)
    keypoints_3d = np.asarray(keypoints_3d, np.float64).reshape(-1, 27, 3)
    # Whole 2 m steps keep the scale steady from frame to frame in a video.
    depth_range = max(min_depth_range, 2.0 * math.ceil(0.625 * float(keypoints_3d[..., 2].max(initial=0.0))))
    scale = (size - 10) / depth_range

    def to_panel(x: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.stack([size / 2 + x * scale, size - 5 - z * scale], axis=-1)

    fx, cx = float(K[0][0]), float(K[0][2])
    for u in (0.0, float(image_width)):
        edge = to_panel(np.array([0.0, (u - cx) / fx * depth_range]), np.array([0.0, depth_range]))
        cv2.line(panel, tuple(map(int, edge[0])), tuple(map(int, edge[1])), (90, 90, 90), 1, cv2.LINE_AA)
    for metres in range(1, int(depth_range) + 1):
        y = int(size - 5 - metres * scale)
        cv2.line(panel, (0, y), (6, y), (90, 90, 90), 1)
    for track_id, kp in zip(np.asarray(track_ids), keypoints_3d):
        points = np.round(to_panel(kp[:, 0], kp[:, 2]) * 16).astype(np.int64)
        color = id_color(track_id)
        for a, b in SKELETON_27:
            cv2.line(panel, tuple(map(int, points[a])), tuple(map(int, points[b])), color, 1, cv2.LINE_AA, shift=4)
    return panel


class VideoWriter:
    """Write RGB frames to a video with PyAV (H.264 when available, else MPEG-4 Part 2).

    Odd frame sizes are padded by one black row/column (4:2:0 codecs need even sizes).
    """

    def __init__(self, path: str | Path, fps: float, codecs: tuple[str, ...] = ("libx264", "h264", "mpeg4")) -> None:
        import av

        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else Fraction(30)
        self.codec = next((c for c in codecs if c in av.codecs_available), None)
        if self.codec is None:
            raise RuntimeError(f"none of the video codecs {codecs} is available in this FFmpeg build")
        self._container = av.open(str(self.path), "w")
        self._stream = None

    def write(self, rgb: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 frame (resized to the first frame's size if it differs)."""
        import av

        height, width = rgb.shape[:2]
        if self._stream is None:
            self._stream = self._container.add_stream(self.codec, rate=self.fps)
            self._stream.width, self._stream.height = width + width % 2, height + height % 2
            self._stream.pix_fmt = "yuv420p"
            self._size = (height, width)
        if (height + height % 2, width + width % 2) != (self._stream.height, self._stream.width):
            import cv2

            # Image folders may mix sizes; a video cannot, so later frames are resized to the first.
            height, width = self._size
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        padded = np.zeros((self._stream.height, self._stream.width, 3), np.uint8)
        padded[:height, :width] = rgb
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")):
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
