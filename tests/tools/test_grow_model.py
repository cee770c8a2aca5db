"""tools/grow_model.py: a grown model computes what the source did, and has the new parts."""

from __future__ import annotations

import torch

from comotion.body import load_body_model
from comotion.model import CoMotion
from comotion.model.config import get_preset

from .conftest import load_tool

grow_model = load_tool("grow_model")


def test_grown_model_file_keeps_weights_settings_and_outputs(tmp_path):
    torch.manual_seed(0)
    source = CoMotion(get_preset("tiny"), load_body_model("anny-lowres")).eval()
    source.tracker_settings = {"init_conf_thr": 0.8}
    source_path = source.save(tmp_path / "source.safetensors")
    assert grow_model.main([str(source_path), str(tmp_path / "grown.safetensors"), "--offset-readout"]) == 0
    grown = CoMotion.from_pretrained(tmp_path / "grown.safetensors")
    assert grown.config.update.offset_readout and grown.tracker_settings == {"init_conf_thr": 0.8}
    assert all(block.embed_offsets.weight.abs().sum() == 0 for block in grown.update_module.cross_attention)
    features = torch.randn(1, source.config.encoder.output_dim, 32, 32, generator=torch.Generator().manual_seed(2))
    K = torch.tensor([[[300.0, 0.0, 128.0], [0.0, 300.0, 128.0]]])
    trans = torch.tensor([[[0.3, 0.0, 5.0]]])
    pose = source.mean_pose.expand(1, 1, 72).clone()
    keypoints = source.body.keypoints(torch.zeros(1, 10), pose[0], trans[0])[None]
    inputs = (features, K, torch.zeros(1, 1, 10), pose, trans, keypoints, torch.zeros(1, 1, source.config.update.hidden_dim))
    with torch.no_grad():
        assert torch.allclose(source.update_module(*inputs).trans, grown.update_module(*inputs).trans, atol=1e-5)
    # Growing twice is refused with a one-line error.
    assert grow_model.main([str(tmp_path / "grown.safetensors"), str(tmp_path / "again.safetensors"), "--offset-readout"]) == 2


def test_missing_source_is_a_clear_error(tmp_path, capsys):
    assert grow_model.main([str(tmp_path / "nope.pt"), str(tmp_path / "out.safetensors"), "--offset-readout"]) == 2
    assert "nope.pt: no such file" in capsys.readouterr().err


def test_widened_detection_network_computes_the_same_with_distinct_copies(tmp_path):
    torch.manual_seed(0)
    source = CoMotion(get_preset("tiny"), load_body_model("anny-lowres")).eval()
    source.tracker_settings = {"snap_thr": 0.2}
    source_path = source.save(tmp_path / "source.safetensors")
    assert grow_model.main([str(source_path), str(tmp_path / "wide.safetensors"), "--detection-hidden", "128"]) == 0
    wide = CoMotion.from_pretrained(tmp_path / "wide.safetensors").eval()
    assert wide.config.detection.hidden_dim == 128 and wide.tracker_settings == {"snap_thr": 0.2}
    head = wide.detection_module.detection_head
    assert head.enc1[0].layers[0].out_channels == 128 and head.decoders[0][0].in_channels == 256
    image = torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    K = torch.tensor([[512.0, 0.0, 128.0], [0.0, 512.0, 128.0]]).expand(2, 2, 3)
    with torch.no_grad():
        before, after = source.detection_module(image, K), wide.detection_module(image, K)
    for name in ("image_features", "betas", "delta_body_pose", "trans", "conf", "pose_embedding"):
        assert torch.allclose(getattr(before, name), getattr(after, name), atol=1e-4), name
    # Weights outside the widened parts are the source's; the update module is untouched.
    assert torch.equal(wide.update_module.state_dict()["pose_decoder.1.weight"], source.update_module.state_dict()["pose_decoder.1.weight"])
    # The copies of an input channel read it with different weights, so they can come apart.
    reader = head.decoders[0][0].weight[:, :, 0, 0]
    assert not torch.allclose(reader[:, :128], reader[:, 128:])
    assert torch.allclose(reader[:, :128] + reader[:, 128:], source.detection_module.detection_head.decoders[0][0].weight[:, :, 0, 0].repeat(2, 1), atol=1e-6)


def test_growth_options_are_checked(tmp_path, capsys):
    source_path = CoMotion(get_preset("tiny"), load_body_model("anny-lowres")).save(tmp_path / "source.safetensors")
    assert grow_model.main([str(source_path), str(tmp_path / "out.safetensors")]) == 2
    assert "nothing to grow" in capsys.readouterr().err
    assert grow_model.main([str(source_path), str(tmp_path / "out.safetensors"), "--detection-hidden", "96"]) == 2
    assert "must be a larger multiple of the model's hidden_dim 64" in capsys.readouterr().err
