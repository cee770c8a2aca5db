"""Pose-update module against the reference (parity ``refine.pt``), at the README's tolerances."""

import re

import pytest
import torch

from comotion.geometry.rotations import axis_angle_to_matrix
from comotion.model import FrameFeatures

OUTPUT_ATOL = {"delta_root_orient": 2e-5, "delta_body_pose": 2e-5, "trans": 5e-5, "hidden": 2e-5}


@pytest.fixture(scope="module")
def refine(parity_dir):
    return torch.load(parity_dir / "refine.pt", weights_only=True)


@pytest.fixture(scope="module")
def image_features(refine, parity_dir):
    """The reference's own image features named by ``image_features_source`` (isolates the update step)."""
    source = refine["image_features_source"]
    match = re.match(r"(\w+\.pt) cases\[(\d+)\] outputs\.image_features", source)
    assert match, f"unrecognised image_features_source {source!r}"
    data = torch.load(parity_dir / match.group(1), weights_only=True)
    return data["cases"][int(match.group(2))]["outputs"]["image_features"]


def _rotations(pose: torch.Tensor) -> torch.Tensor:
    return axis_angle_to_matrix(pose.reshape(*pose.shape[:-1], -1, 3))


def _cases_with_outputs(refine):
    cases = [case for case in refine["cases"] if "outputs" in case]
    assert cases, "refine.pt has no case with outputs"
    return cases


def test_update_network_outputs(parity_model, refine, image_features):
    net = parity_model.update_module
    for case in _cases_with_outputs(refine):
        inputs = case["inputs"]
        with torch.inference_mode():
            output = net(
                image_features,
                refine["cropped_K"],
                inputs["betas"],
                inputs["pose"],
                inputs["trans"],
                inputs["pred_3d"],
                inputs["hidden"],
            )
        for name, atol in OUTPUT_ATOL.items():
            torch.testing.assert_close(
                getattr(output, name), case["outputs"][name], rtol=0, atol=atol, msg=f"N={case['num_tracks']} {name}"
            )


def test_tracker_facing_update(parity_model, refine, image_features, parity_config):
    features = FrameFeatures(image_features, refine["cropped_K"], refine["K_raw"], (0, 0))
    for case in _cases_with_outputs(refine):
        inputs = {k: v[0] for k, v in case["inputs"].items()}
        updated = parity_model.update(
            features, inputs["betas"], inputs["pose"], inputs["trans"], inputs["pred_3d"], inputs["hidden"]
        )
        expected = case["tracker_update"]
        assert len(updated) == case["num_tracks"]
        torch.testing.assert_close(_rotations(updated.pose), _rotations(expected["pose"][0]), rtol=0, atol=2e-5)
        torch.testing.assert_close(updated.trans, case["outputs"]["trans"][0], rtol=0, atol=5e-5)
        torch.testing.assert_close(updated.hidden, case["outputs"]["hidden"][0], rtol=0, atol=2e-5)
        torch.testing.assert_close(updated.keypoints_3d, expected["pred_3d"][0], rtol=0, atol=1e-4)
        torch.testing.assert_close(updated.keypoints_2d, expected["pred_2d"][0], rtol=0, atol=5e-2)


def test_update_intermediates(parity_model, refine, image_features):
    cases = [case for case in refine["cases"] if "intermediate" in case]
    if not cases:
        pytest.skip("no refine case with intermediates in this parity folder")
    net = parity_model.update_module
    K_crop = refine["cropped_K"]
    for case in cases:
        inputs, inter = case["inputs"], case["intermediate"]
        with torch.inference_mode():
            keys, values = net.image_keys_values(image_features)
            assert list(keys.shape) == inter["pixel_kv_shape"]
            count = inter["pixel_k_first256"].shape[2]
            torch.testing.assert_close(keys[:, :, :count], inter["pixel_k_first256"], rtol=0, atol=2e-5)
            torch.testing.assert_close(values[:, :, :count], inter["pixel_v_first256"], rtol=0, atol=2e-5)
            tokens = net.encode_tokens(
                K_crop, inputs["betas"], inputs["pose"], inputs["trans"], inputs["pred_3d"], inputs["hidden"]
            )
            torch.testing.assert_close(tokens, inter["tokens_encoded"], rtol=0, atol=2e-5)
            # Each block is fed the reference's own input so errors cannot accumulate unseen.
            after_1 = net.cross_attention[0](inter["tokens_encoded"], keys, values)
            torch.testing.assert_close(after_1, inter["tokens_after_cross_attention_1"], rtol=0, atol=2e-5)
            after_2 = net.cross_attention[1](inter["tokens_after_cross_attention_1"], keys, values)
            torch.testing.assert_close(after_2, inter["tokens_after_cross_attention_2"], rtol=0, atol=2e-5)
            _, vectors = net.decode(inter["tokens_after_cross_attention_2"], inputs["hidden"], inputs["trans"], K_crop)
        for name in ("hidden_update_input", "px_feedback", "raw_update_vector"):
            torch.testing.assert_close(vectors[name], inter[name], rtol=0, atol=2e-5, msg=name)


def test_zero_tracks_give_empty_update(parity_model, refine, image_features, parity_config):
    # The reference raises for N = 0 (it records the error); we return an empty update instead.
    empty = [case for case in refine["cases"] if case["num_tracks"] == 0]
    assert all("error" in case for case in empty)
    hidden_dim = parity_config.update.hidden_dim
    features = FrameFeatures(image_features, refine["cropped_K"], refine["K_raw"], (0, 0))
    updated = parity_model.update(
        features,
        torch.zeros(0, 10),
        torch.zeros(0, 72),
        torch.zeros(0, 3),
        torch.zeros(0, 27, 3),
        torch.zeros(0, hidden_dim),
    )
    assert len(updated) == 0
    assert updated.keypoints_2d.shape == (0, 27, 2) and updated.hidden.shape == (0, hidden_dim)
