"""MOT text: mesh boxes and line formatting (worked examples and the reference's parity file)."""

from __future__ import annotations

import numpy as np
import torch

from comotion.geometry.camera import project_points
from comotion.io.mot import MotWriter, format_mot_lines, mesh_boxes
from tests.io.io_fixtures import random_pose


def test_format_worked_example():
    boxes = np.array([[[10.5, 20.25], [110.5, 220.75]], [[0.01, 0.01], [5.0, 6.0]]])
    lines = format_mot_lines(np.array([0, 41]), np.array([3, 12]), boxes)
    # +1 on frame, x, y and (quirk Q18) on width and height.
    assert lines == ["1,3,11.50,21.25,101.00,201.50,1,0,0,0\n", "42,12,1.01,1.01,5.99,6.99,1,0,0,0\n"]
    fixed = format_mot_lines(np.array([0]), np.array([3]), boxes[:1], fixed_quirks=True)
    assert fixed == ["1,3,11.50,21.25,100.00,200.50,1,0,0,0\n"]


def test_mesh_boxes_from_projected_vertices_with_padding_and_clamps(tiny_body):
    betas = torch.zeros(2, 10)
    pose = random_pose(2)
    trans = torch.tensor([[0.0, 0.0, 4.0], [1.2, 0.0, 3.0]])
    K = torch.tensor([[200.0, 0, 100], [0, 200, 80]])
    vertices = tiny_body(betas, pose, trans, vertices="all").vertices[:, ::20]
    uv = project_points(vertices, K)
    lo, hi = uv.amin(1), uv.amax(1)
    side = (hi - lo).amax(-1, keepdim=True)
    expected = torch.stack([lo - 0.05 * side, hi + 0.05 * side], dim=1)
    # Large image: no clamping applies except the min-corner floor of 0.01.
    unclamped = mesh_boxes(tiny_body, betas, pose, trans, K, 10_000, 10_000)
    torch.testing.assert_close(unclamped, torch.maximum(expected, torch.tensor(0.01)))
    # Small image: the reference clamps only min >= 0.01 and max <= (W - 1, H - 1) (quirk Q19).
    reference = mesh_boxes(tiny_body, betas, pose, trans, K, 60, 80)
    torch.testing.assert_close(reference[:, 1], torch.minimum(expected[:, 1], torch.tensor([79.0, 59.0])))
    torch.testing.assert_close(reference[:, 0], expected[:, 0].clamp(min=0.01))
    assert (reference[1, 0, 0] > reference[1, 1, 0]).item()  # the person right of the image
    inside = mesh_boxes(tiny_body, betas, pose, trans, K, 60, 80, clamp="image")
    assert (inside[..., 0] >= 0).all() and (inside[..., 0] <= 79).all() and (inside[..., 1] <= 59).all()
    assert mesh_boxes(tiny_body, betas[:0], pose[:0], trans[:0], K, 60, 80).shape == (0, 2, 2)


def test_writer_streams_lines(tmp_path):
    path = tmp_path / "mot.txt"
    with MotWriter(path) as writer:
        writer.write(np.array([0]), np.array([1]), np.array([[[1.0, 2.0], [3.0, 4.0]]]))
        assert path.read_text() == "1,1,2.00,3.00,3.00,3.00,1,0,0,0\n"  # flushed before close
        writer.write(np.array([1, 1]), np.array([1, 2]), np.zeros((2, 2, 2)))
    assert len(path.read_text().splitlines()) == 3


def test_reference_mot_file_is_reproduced(parity_dir, fake_smpl_path):
    from comotion.body import load_body_model

    body = load_body_model(fake_smpl_path)
    run = torch.load(parity_dir / "e2e_512x512.pt", weights_only=True)
    cleanup, (height, width) = run["cleanup"], run["image_res"]
    preds = cleanup["preds"]
    boxes = mesh_boxes(body, preds["betas"], preds["pose"], preds["trans"], cleanup["K"], height, width)
    torch.testing.assert_close(boxes, cleanup["bboxes"], atol=1e-3, rtol=0)
    text = "".join(format_mot_lines(preds["frame_idx"].numpy(), preds["id"].numpy(), boxes.numpy()))
    assert text == (parity_dir / "e2e_512x512_mot.txt").read_text()
