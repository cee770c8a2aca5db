"""Geometry against the reference implementation's recorded inputs/outputs (parity ``helper.pt``)."""

import pytest
import torch

from comotion.geometry import (
    apply_pose_delta,
    axis_angle_to_matrix,
    boxes_from_points,
    oks_nms,
    oks_similarity,
    pixels_to_camera,
    points_in_image,
    project_points,
)


@pytest.fixture(scope="module")
def helper(parity_dir):
    return torch.load(parity_dir / "helper.pt", weights_only=True)


def _close_px(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-4)


def test_project_points(helper):
    case = helper["project_to_2d"]
    _close_px(project_points(case["pts3d"], case["K"]), case["out"])
    batched = project_points(case["pts3d_batched"], case["K_batched"])
    _close_px(batched, case["out_batched"])


def test_pixels_to_camera(helper):
    case = helper["px_to_world"]
    torch.testing.assert_close(pixels_to_camera(case["pts"], case["K"]), case["out"], rtol=1e-6, atol=1e-5)


def test_oks_similarity(helper):
    case = helper["normalized_weighted_score"]
    scores, dists = oks_similarity(
        case["kp0"], case["kp1"], case["c0"], case["c1"], std=case["std"], return_distances=True
    )
    torch.testing.assert_close(scores, case["scores"], rtol=0, atol=1e-5)
    torch.testing.assert_close(dists, case["dists"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(oks_similarity(case["kp0"], case["kp1"]), case["scores_unit_conf"], rtol=0, atol=1e-5)
    torch.testing.assert_close(
        oks_similarity(case["kp0"], case["kp1"], case["c0"], case["c1"], std=0.15),
        case["scores_std015"],
        rtol=0,
        atol=1e-5,
    )
    torch.testing.assert_close(oks_similarity(case["kp0"], case["kp0"]), case["self_scores_unit_conf"], rtol=0, atol=1e-5)


def test_nms_on_recorded_candidates(helper):
    case = helper["nms_detections"]
    defaults = {"std": 0.08, "iou_thr": 0.4, "conf_thr": 0.2}
    for sub in case["cases"]:
        kwargs = {**defaults, **sub["kwargs"]}
        keep = oks_nms(case["candidates_pred_2d"], case["candidates_conf"], **kwargs)
        assert keep.tolist() == sub["keep"].tolist(), kwargs
    synthetic = case["synthetic"]
    forward = oks_nms(synthetic["pred_2d"], synthetic["conf"], std=0.08, iou_thr=0.4, conf_thr=0.1)
    assert forward.tolist() == synthetic["keep_forward_kwargs"].tolist()
    default = oks_nms(synthetic["pred_2d"], synthetic["conf"], **defaults)
    assert default.tolist() == synthetic["keep_default_kwargs"].tolist()


def test_pose_composition(helper):
    case = helper["update_pose"]
    out = apply_pose_delta(case["pose"], case["delta_pose"])
    # Compare as rotation matrices: near pi the axis sign of a rotation vector is ill-defined.
    torch.testing.assert_close(
        axis_angle_to_matrix(out.reshape(-1, 24, 3)),
        axis_angle_to_matrix(case["out"].reshape(-1, 24, 3)),
        rtol=0,
        atol=1e-5,
    )


def test_mean_pose_composition(helper, official_data_dir):
    mean_pose = torch.load(official_data_dir / "extra_smpl_reference.pt", weights_only=True)["mean_pose"]
    case = helper["get_smpl_pose"]
    delta = torch.cat([case["delta_root_orient"], case["delta_body_pose"]], dim=-1)
    out = apply_pose_delta(mean_pose, delta)
    torch.testing.assert_close(
        axis_angle_to_matrix(out.reshape(-1, 24, 3)),
        axis_angle_to_matrix(case["out"].reshape(-1, 24, 3)),
        rtol=0,
        atol=1e-5,
    )


def test_points_in_image(helper):
    case = helper["check_inbounds"]
    height, width = case["res"]
    assert torch.equal(points_in_image(case["kps"], height, width), case["out"])


def test_boxes_from_points(helper):
    case = helper["points_to_bbox2d"]
    _close_px(boxes_from_points(case["pts"]), case["out"])
    _close_px(boxes_from_points(case["pts"], pad=0.05), case["out_pad_005"])
