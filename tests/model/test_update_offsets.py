"""The tiny preset's optional offset readout (``UpdateConfig.offset_readout``, ours)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from comotion.model import CoMotion
from comotion.model.config import get_preset
from comotion.model.update import TrackAnchors, local_attention_offsets


def _anchors(center, height):
    return TrackAnchors(center=torch.tensor([center], dtype=torch.float32), height=torch.tensor([height], dtype=torch.float32))


def test_all_attention_on_one_cell_gives_its_offset_in_person_heights():
    cells = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 0.2]])
    anchors = _anchors([[0.05, 0.05]], [0.2])  # one track, pelvis at (0.05, 0.05), 0.2 tall
    attention = torch.tensor([0.0, 1.0, 0.0]).reshape(1, 1, 1, 1, 3)
    offsets = local_attention_offsets(attention, cells, anchors)
    assert offsets.shape == (1, 1, 1, 1, 2)
    assert torch.allclose(offsets[0, 0, 0, 0], torch.tensor([0.25, -0.25]))


def test_window_discounts_cells_far_from_the_track():
    cells = torch.tensor([[0.0, 0.0], [0.02, 0.0], [0.9, 0.9]])
    anchors = _anchors([[0.0, 0.0]], [0.1])
    attention = torch.tensor([0.0, 0.5, 0.5]).reshape(1, 1, 1, 1, 3)  # half on someone 9 heights away
    offsets = local_attention_offsets(attention, cells, anchors)
    assert torch.allclose(offsets[0, 0, 0, 0], torch.tensor([0.2, 0.0]), atol=1e-6)
    # Within the window the cells are weighted by the window: two cells, equal attention.
    cells = torch.tensor([[0.0, 0.0], [0.05, 0.0]])  # 0 and 0.5 heights away
    attention = torch.tensor([0.5, 0.5]).reshape(1, 1, 1, 1, 2)
    window = torch.exp(torch.tensor(-0.5 * 0.5**2 / 0.5**2))
    expected = 0.5 * window / (1 + window)
    assert torch.isclose(local_attention_offsets(attention, cells, anchors)[0, 0, 0, 0, 0], expected)


@pytest.fixture(scope="module")
def tiny_pair():
    """The tiny preset without and with the readout, same weights elsewhere."""
    from comotion.body import load_body_model

    body = load_body_model("anny-lowres")
    torch.manual_seed(0)
    plain = CoMotion(get_preset("tiny"), body).eval()
    config = get_preset("tiny")
    config = dataclasses.replace(config, update=dataclasses.replace(config.update, offset_readout=True))
    grown = CoMotion(config, body).eval()
    missing, unexpected = grown.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and sorted(missing) == sorted(
        f"update_module.cross_attention.{i}.embed_offsets.{p}" for i in range(2) for p in ("weight", "bias")
    )
    return plain, grown


def _tracks(model, num_tracks=3):
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(1, model.config.encoder.output_dim, 32, 32, generator=generator)
    K = torch.tensor([[[300.0, 0.0, 128.0], [0.0, 300.0, 128.0]]])
    betas = torch.zeros(1, num_tracks, 10)
    pose = model.mean_pose.expand(1, num_tracks, 72).clone()
    trans = torch.tensor([[[-0.5, 0.0, 5.0], [0.4, 0.1, 6.0], [0.0, -0.2, 4.0]]])[:, :num_tracks]
    keypoints = model.body.keypoints(betas[0], pose[0], trans[0])[None]
    hidden = torch.randn(1, num_tracks, model.config.update.hidden_dim, generator=generator)
    return features, K, betas, pose, trans, keypoints, hidden


def test_zero_initialised_readout_leaves_the_update_unchanged(tiny_pair):
    plain, grown = tiny_pair
    inputs = _tracks(plain)
    with torch.no_grad():
        a, b = plain.update_module(*inputs), grown.update_module(*inputs)
    assert torch.allclose(a.trans, b.trans, atol=1e-5) and torch.allclose(a.hidden, b.hidden, atol=1e-5)


def test_readout_feeds_the_update_and_is_trained(tiny_pair):
    plain, grown = tiny_pair
    inputs = _tracks(grown)
    for block in grown.update_module.cross_attention:
        torch.nn.init.normal_(block.embed_offsets.weight, std=1.0)
    try:
        with torch.no_grad():
            assert not torch.allclose(plain.update_module(*inputs).trans, grown.update_module(*inputs).trans, atol=1e-4)
        grown.update_module.zero_grad()
        grown.update_module(*inputs).trans.sum().backward()
        grads = [block.embed_offsets.weight.grad.abs().sum() for block in grown.update_module.cross_attention]
        assert all(g > 0 for g in grads)
    finally:
        for block in grown.update_module.cross_attention:
            torch.nn.init.zeros_(block.embed_offsets.weight)
        grown.update_module.zero_grad()
