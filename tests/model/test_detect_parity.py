"""Encoder + detection head + decoding + NMS against the reference (parity ``detect.pt``).

Tolerances are those of the parity README.  Root orientations are compared as rotation matrices
(the mean pose's root is a half turn, where the axis-angle sign is numerically delicate).
"""

import pytest
import torch

from comotion.geometry.rotations import axis_angle_to_matrix
from comotion.model import PreparedFrame
from comotion.model.detect import decode_candidates

from .model_fixtures import detect_case_input, read_png

OUTPUT_ATOL = {
    "image_features": 2e-4,
    "betas": 1e-4,
    "delta_root_orient": 1e-5,
    "delta_body_pose": 2e-5,
    "trans": 1e-4,
    "conf": 5e-4,
}


def _rotations(pose: torch.Tensor) -> torch.Tensor:
    return axis_angle_to_matrix(pose.reshape(*pose.shape[:-1], -1, 3))


def _cases(detect_fixture):
    assert detect_fixture["cases"], "detect.pt has no cases"
    return detect_fixture["cases"]


@pytest.fixture(scope="module")
def network_runs(parity_dir, parity_model, parity_config, detect_fixture):
    """Per case: network input, K_crop, encoder features, head pyramid and the detection output."""
    runs = []
    net = parity_model.detection_module
    with torch.inference_mode():
        for case in _cases(detect_fixture):
            image, K_crop, _ = detect_case_input(parity_dir, case, parity_config.input_resolution)
            backbone, conditioned = net.encode(image, K_crop)
            pyramid = net.detection_head.pyramid(conditioned)
            runs.append((case, image, K_crop, backbone, conditioned, pyramid, net(image, K_crop)))
    return runs


def test_candidate_count_follows_config(parity_config, detect_fixture):
    for case in _cases(detect_fixture):
        assert case["outputs"]["conf"].shape[1] == parity_config.num_candidates


def test_encoder_intermediates(network_runs):
    for case, _, _, backbone, conditioned, pyramid, _ in network_runs:
        inter = case["intermediate"]
        torch.testing.assert_close(backbone, inter["backbone_features"], rtol=0, atol=1e-4)
        torch.testing.assert_close(conditioned, inter["conditioned_features"], rtol=0, atol=5e-4)
        assert len(pyramid) == len(inter["pyramid"])
        for ours, ref in zip(pyramid, inter["pyramid"]):
            torch.testing.assert_close(ours, ref, rtol=0, atol=2e-4)


def test_detection_outputs(network_runs):
    for case, _, _, _, _, _, output in network_runs:
        expected = case["outputs"]
        for name, atol in OUTPUT_ATOL.items():
            ours = getattr(output, name)
            ref = expected[name][..., 0] if name == "conf" else expected[name]
            torch.testing.assert_close(ours, ref, rtol=0, atol=atol, msg=f"{case['name']}: {name}")
        torch.testing.assert_close(output.pose_embedding, case["intermediate"]["pose_embedding"], rtol=0, atol=1e-4)


def test_intrinsics_conditioning_alone_matches(parity_model, network_runs):
    """The rotary conditioning applied to the reference's own backbone features (isolates §2.3)."""
    for case, _, K_crop, _, _, _, _ in network_runs:
        inter = case["intermediate"]
        conditioned = parity_model.detection_module.rot_embedding(inter["backbone_features"], K_crop)
        torch.testing.assert_close(conditioned, inter["conditioned_features"], rtol=0, atol=5e-5)


def test_all_candidates_decoded(parity_model, network_runs):
    for case, _, _, _, _, _, output in network_runs:
        index = torch.arange(output.conf.shape[1])
        decoded = decode_candidates(output, index, parity_model.mean_pose, parity_model.body, case["K_raw"])
        expected = case["all_candidates"]
        torch.testing.assert_close(_rotations(decoded.pose), _rotations(expected["pose"][0]), rtol=0, atol=2e-5)
        torch.testing.assert_close(decoded.keypoints_3d, expected["pred_3d"][0], rtol=0, atol=1e-4)
        torch.testing.assert_close(decoded.keypoints_2d, expected["pred_2d"][0], rtol=0, atol=1e-2)


@pytest.mark.parametrize(
    "record, kwargs",
    [
        ("decoded_forward_kwargs", {"std": 0.08, "iou_thr": 0.4, "conf_thr": 0.1}),
        ("decoded_demo_kwargs", {"std": 0.15, "iou_thr": 0.4, "conf_thr": 0.25}),
    ],
)
def test_detect_selects_reference_detections(parity_dir, parity_model, parity_config, detect_fixture, record, kwargs):
    for case in _cases(detect_fixture):
        image, K_crop, image_size = detect_case_input(parity_dir, case, parity_config.input_resolution)
        frame = PreparedFrame(image, K_crop, case["K_raw"], image_size)
        detections, features = parity_model.detect(frame, **kwargs)
        expected = case[record]
        assert detections.candidate_index.tolist() == expected["nms_idxs"].tolist(), case["name"]
        torch.testing.assert_close(detections.betas, expected["betas"][0], rtol=0, atol=1e-4)
        torch.testing.assert_close(_rotations(detections.pose), _rotations(expected["pose"][0]), rtol=0, atol=2e-5)
        torch.testing.assert_close(detections.trans, expected["trans"][0], rtol=0, atol=1e-4)
        torch.testing.assert_close(detections.keypoints_3d, expected["pred_3d"][0], rtol=0, atol=1e-4)
        torch.testing.assert_close(detections.keypoints_2d, expected["pred_2d"][0], rtol=0, atol=1e-2)
        torch.testing.assert_close(detections.conf_logit, expected["conf"][0, :, 0], rtol=0, atol=5e-4)
        torch.testing.assert_close(features.image_features, case["outputs"]["image_features"], rtol=0, atol=2e-4)


def test_detections_of_every_end_to_end_frame(parity_dir, parity_model):
    """Per-frame detections of the e2e runs (the tracker's input) match, NMS indices exactly."""
    runs = sorted(parity_dir.glob("e2e_*.pt"))
    assert runs, "no e2e_*.pt in the parity folder"
    for path in runs:
        run = torch.load(path, weights_only=True)
        frames = sorted((parity_dir / run["frames_dir"]).glob("*.png"))
        assert len(frames) == run["num_frames"] == len(run["per_frame"])
        for index, (png, record) in enumerate(zip(frames, run["per_frame"])):
            image = read_png(png)
            assert int(image.long().sum()) == int(run["frame_pixel_sums"][index])
            detections, _ = parity_model.detect(parity_model.prepare(image, run["K"][index]))
            where = f"{path.name} frame {index}"
            assert detections.candidate_index.tolist() == record["nms_idxs"].tolist(), where
            expected = record["detections"]
            torch.testing.assert_close(detections.trans, expected["trans"][0], rtol=0, atol=2e-4, msg=where)
            torch.testing.assert_close(detections.keypoints_2d, expected["pred_2d"][0], rtol=0, atol=5e-2, msg=where)
            torch.testing.assert_close(detections.conf_logit, expected["conf"][0, :, 0], rtol=0, atol=5e-4, msg=where)
