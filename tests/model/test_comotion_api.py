"""The CoMotion inference API on a small random-weight model (behaviour, not reference numbers)."""

import dataclasses

import numpy as np
import pytest
import torch

from comotion.body import load_body_model
from comotion.errors import ComotionError
from comotion.geometry.camera import project_points
from comotion.model import CoMotion, get_preset


@pytest.fixture(scope="module")
def body():
    return load_body_model("anny-lowres")


@pytest.fixture(scope="module")
def model(body):
    torch.manual_seed(1)
    return CoMotion(get_preset("tiny"), body).eval()


@pytest.fixture(scope="module")
def image():
    generator = torch.Generator().manual_seed(2)
    return torch.randint(0, 256, (3, 90, 160), dtype=torch.uint8, generator=generator)


def test_prepare_accepts_tensor_and_numpy(model, image):
    frame = model.prepare(image)
    resolution = model.config.input_resolution
    assert frame.image.shape == (1, 3, resolution, resolution)
    assert frame.image_size == (90, 160)
    assert frame.K.shape == (2, 3) and frame.K_crop.shape == (1, 2, 3)
    from_numpy = model.prepare(image.permute(1, 2, 0).numpy())
    assert torch.equal(from_numpy.image, frame.image)


def test_detections_are_consistent_candidates(model, image):
    frame = model.prepare(image)
    detections, features = model.detect(frame, conf_thr=0.3)
    everything = model.candidates(frame)
    assert len(everything) == model.config.num_candidates
    index = detections.candidate_index
    assert index.dtype == torch.long and len(detections) == index.numel() > 0
    # Decreasing confidence, every kept candidate above the threshold.
    assert torch.all(detections.conf_logit[:-1] >= detections.conf_logit[1:])
    assert torch.all(torch.sigmoid(detections.conf_logit) > 0.3)
    # Decoding only the confident candidates gives the same people as decoding all of them.
    for field in ("betas", "pose", "trans", "keypoints_3d", "keypoints_2d", "conf_logit"):
        torch.testing.assert_close(getattr(detections, field), getattr(everything, field)[index], msg=field)
    torch.testing.assert_close(detections.keypoints_2d, project_points(detections.keypoints_3d, frame.K))
    assert features.image_features.shape[-1] == model.config.feature_size


def test_no_confident_candidate_gives_empty_detections(model, image):
    detections, _ = model.detect(model.prepare(image), conf_thr=1.0)
    assert len(detections) == 0 and detections.keypoints_2d.shape == (0, 27, 2)


def test_transitive_nms_switch_keeps_a_superset(model, image):
    frame = model.prepare(image)
    reference, _ = model.detect(frame, conf_thr=0.0, iou_thr=0.1)
    fixed_model = CoMotion(dataclasses.replace(model.config, transitive_nms=True), model.body, model.mean_pose)
    fixed_model.load_state_dict(model.state_dict())
    fixed, _ = fixed_model.eval().detect(frame, conf_thr=0.0, iou_thr=0.1)
    # Reference (non-transitive) NMS also lets suppressed candidates suppress: it never keeps more.
    assert set(reference.candidate_index.tolist()) < set(fixed.candidate_index.tolist())


def _tracks(model, image, count):
    detections, features = model.detect(model.prepare(image), conf_thr=0.0)
    hidden = torch.randn(count, model.config.update.hidden_dim, generator=torch.Generator().manual_seed(3))
    fields = [detections.betas, detections.pose, detections.trans, detections.keypoints_3d]
    return features, [f[:count] for f in fields] + [hidden]


def test_update_moves_tracks_and_keeps_them_in_order(model, image):
    features, tracks = _tracks(model, image, 5)
    updated = model.update(features, *tracks)
    assert len(updated) == 5
    assert updated.hidden.shape == (5, model.config.update.hidden_dim)
    torch.testing.assert_close(updated.keypoints_3d, model.body.keypoints(tracks[0], updated.pose, updated.trans))
    torch.testing.assert_close(updated.keypoints_2d, project_points(updated.keypoints_3d, features.K))
    # People attend to each other without any position encoding: permuting the tracks permutes
    # the update (betas are inputs only, never outputs).
    perm = torch.tensor([3, 0, 4, 1, 2])
    permuted = model.update(features, *[t[perm] for t in tracks])
    torch.testing.assert_close(permuted.trans, updated.trans[perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(permuted.hidden, updated.hidden[perm], atol=1e-5, rtol=1e-5)


def test_update_of_zero_tracks_is_empty(model, image):
    features, tracks = _tracks(model, image, 0)
    updated = model.update(features, *tracks)
    assert len(updated) == 0 and updated.pose.shape == (0, 72) and updated.hidden.shape[0] == 0


def test_inference_needs_no_gradients(model, image):
    detections, features = model.detect(model.prepare(image))
    assert not detections.trans.requires_grad and not features.image_features.requires_grad


def test_default_packaged_weights_error_is_clear(monkeypatch, tmp_path):
    import comotion.model.comotion as comotion_module

    monkeypatch.setattr(comotion_module, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ComotionError, match="no packaged weights for 'default'") as info:
        CoMotion.from_pretrained("default")
    assert "\n" not in str(info.value)


def test_model_moves_between_devices(model):
    assert model.to("cpu").device.type == "cpu"
    if torch.cuda.is_available():
        cuda_model = CoMotion(model.config, load_body_model("anny-lowres"), model.mean_pose)
        cuda_model.load_state_dict(model.state_dict())
        cuda_model = cuda_model.to("cuda").eval()
        frame = cuda_model.prepare(np.zeros((40, 50, 3), dtype=np.uint8))
        detections, _ = cuda_model.detect(frame)
        assert detections.trans.device.type == "cuda"


def test_image_keys_values_are_cached_per_frame(model, image):
    features, tracks = _tracks(model, image, 3)
    assert features.keys_values is None
    first = model.update(features, *tracks)
    assert features.keys_values is not None
    cached = model.update(features, *tracks)
    fresh = model.update(dataclasses.replace(features, keys_values=None), *tracks)
    assert torch.equal(cached.trans, fresh.trans) and torch.equal(cached.hidden, first.hidden)


def test_packaged_default_model_loads_and_runs():
    """The weights shipped in the package rebuild the tiny model with the free body model."""
    model = CoMotion.from_pretrained("default")
    assert model.config.input_resolution == 256 and model.body.name == "anny"
    image = torch.zeros(3, 120, 160, dtype=torch.uint8)
    detections, features = model.detect(model.prepare(image))
    assert detections.keypoints_2d.shape[1:] == (27, 2)
    updated = model.update(features, detections.betas, detections.pose, detections.trans,
                           detections.keypoints_3d, torch.zeros(len(detections.betas), model.config.update.hidden_dim))  # fmt: skip
    assert updated.pose.shape == detections.pose.shape


def test_input_resolution_can_change_after_loading(body, image):
    torch.manual_seed(1)
    model = CoMotion(get_preset("tiny"), body).eval()
    assert model.config.input_resolution == 256
    model.set_input_resolution(384)
    assert model.detection_module.config.input_resolution == model.update_module.config.input_resolution == 384
    frame = model.prepare(image)
    assert frame.image.shape[-2:] == (384, 384)
    detections, features = model.detect(frame, conf_thr=0.0)
    assert features.image_features.shape[-2:] == (48, 48)
    side = 384 // 8 // 4  # finest pyramid level
    slots = model.config.detection.num_slots
    assert len(model.candidates(frame)) == slots * (side**2 + (side // 2) ** 2 + (side // 4) ** 2)
    assert len(detections) > 0
    hidden = torch.zeros(2, model.config.update.hidden_dim)
    fields = [detections.betas, detections.pose, detections.trans, detections.keypoints_3d]
    assert len(model.update(features, *[f[:2] for f in fields], hidden)) == 2
    for bad in (320, 0, -128):
        with pytest.raises(ComotionError, match="input_resolution"):
            model.set_input_resolution(bad)
    assert model.config.input_resolution == 384
