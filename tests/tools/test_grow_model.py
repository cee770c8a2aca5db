"""tools/grow_model.py: the grown model computes what the source did, and has the readout."""

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
    assert grow_model.main([str(source_path), str(tmp_path / "grown.safetensors")]) == 0
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
    assert grow_model.main([str(tmp_path / "grown.safetensors"), str(tmp_path / "again.safetensors")]) == 2


def test_missing_source_is_a_clear_error(tmp_path, capsys):
    assert grow_model.main([str(tmp_path / "nope.pt"), str(tmp_path / "out.safetensors")]) == 2
    assert "nope.pt: no such file" in capsys.readouterr().err
