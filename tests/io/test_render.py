"""Overlay drawing and the overlay video writer."""

from __future__ import annotations

import numpy as np
import torch

from comotion.io.render import VideoWriter, draw_meshes, draw_skeletons, id_color, top_view
from comotion.io.sources import open_source


def test_id_colors_are_stable_and_distinct():
    assert id_color(3) == id_color(3)
    assert len({id_color(i) for i in range(1, 30)}) == 29


def test_skeleton_is_drawn_in_the_track_colour():
    image = np.zeros((60, 80, 3), np.uint8)
    keypoints = np.tile(np.array([[20.0, 30.0]]), (1, 27, 1))
    keypoints[0, 1:] = [60.0, 30.0]
    out = draw_skeletons(image, keypoints, np.array([5]))
    assert image.max() == 0  # input untouched
    np.testing.assert_array_equal(out[30, 40], id_color(5))  # on the bone from (20, 30) to (60, 30)
    assert out[5, 5].max() == 0


def test_mesh_faces_towards_the_camera_are_filled():
    image = np.full((100, 100, 3), 10, np.uint8)
    K = np.array([[100.0, 0, 50], [0, 100, 50]])
    # A square of two triangles 2 m in front of the camera, spanning pixels 25..75.
    vertices = np.array([[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.5, 0.5, 2.0], [-0.5, 0.5, 2.0]]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    out = draw_meshes(image, vertices, faces, K, np.array([1]), opacity=1.0)
    centre = out[50, 50].astype(float)
    assert np.allclose(centre / np.array(id_color(1)), 1.0, atol=0.02)  # full shading facing the light
    assert out[10, 10].tolist() == [10, 10, 10]
    behind = draw_meshes(image, vertices * np.array([1, 1, -1]), faces, K, np.array([1]))
    np.testing.assert_array_equal(behind, image)


def test_top_view_panel_shape():
    panel = top_view(
        np.random.default_rng(0).normal([0, 0, 5], 0.3, (2, 27, 3)),
        np.array([1, 2]),
        np.array([[100.0, 0, 50], [0, 100, 40]]),
        100,
        120,
    )
    assert panel.shape == (120, 120, 3) and panel.dtype == np.uint8
    assert (panel != 32).any()


def test_video_writer_pads_odd_sizes_and_resizes_later_frames(tmp_path):
    path = tmp_path / "overlay.mp4"
    with VideoWriter(path, fps=12.5) as writer:
        for k in range(4):
            writer.write(np.full((21, 33, 3), 40 * k, np.uint8))
        writer.write(np.full((10, 10, 3), 200, np.uint8))
    source = open_source(path)
    assert (source.info.height, source.info.width) == (22, 34)
    assert source.info.fps == 12.5
    frames = list(source)
    assert len(frames) == 5
    assert abs(float(frames[2].image[:, :20, :30].float().mean()) - 80) < 3
    assert float(frames[4].image[:, :20, :30].float().mean()) > 190
    assert isinstance(frames[0].image, torch.Tensor)
