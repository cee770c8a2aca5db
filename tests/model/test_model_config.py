"""Model configuration: presets, validation, derived sizes, quirk switches."""

import dataclasses

import pytest
import torch

from comotion.errors import InputError
from comotion.model.config import PRESETS, ModelConfig, get_preset, with_fixes
from comotion.model.detect import DetectionNetwork


def test_unknown_preset_names_the_choices():
    with pytest.raises(InputError, match="unknown model config preset 'huge'.*official") as info:
        get_preset("huge")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_and_count_candidates(name):
    config = get_preset(name)
    with torch.device("meta"):
        network = DetectionNetwork(config)
        image = torch.empty(1, 3, config.input_resolution, config.input_resolution)
        K = torch.empty(1, 2, 3)
        output = network(image, K)
    assert output.conf.shape == (1, config.num_candidates)
    assert output.image_features.shape == (1, config.encoder.output_dim, config.feature_size, config.feature_size)


def test_official_sizes():
    config = get_preset("official")
    assert config.num_candidates == 1344
    assert config.encoder.timm_name == "convnextv2_large"
    assert (config.update.llama_heads, config.update.llama_head_dim) == (16, 128)
    assert not config.transitive_nms and not config.resolution_independent_similarity


def test_presets_are_independent_copies():
    a = get_preset("tiny")
    a.update.hidden_dim = 7
    assert get_preset("tiny").update.hidden_dim != 7


def test_with_fixes_turns_on_every_switch_and_copies():
    base = get_preset("official")
    fixed = with_fixes(base)
    assert fixed.transitive_nms and fixed.resolution_independent_similarity
    assert not base.transitive_nms
    assert dataclasses.replace(fixed, transitive_nms=False, resolution_independent_similarity=False) == base
    assert get_preset("official-fixed") == fixed


def test_keypoint_normalizer_quirk_q5():
    assert get_preset("official").keypoint_normalizer((480, 640)) == 1024.0
    assert get_preset("official-fixed").keypoint_normalizer((480, 640)) == 640.0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"encoder": {"variant": "giant"}}, "encoder.variant"),
        ({"encoder": {"output_dim": 64}}, "8 \\* rot_embed_dim"),
        ({"update": {"pose_embed_dim": 12}}, "pose_embed_dim"),
        ({"update": {"token_dim": 30, "num_heads": 4}}, "divisible"),
        ({"input_resolution": 320}, "multiple of 128"),
        ({"encoder": {"colour": 1}}, "unknown field"),
    ],
)
def test_invalid_configs_are_rejected(change, message):
    data = get_preset("official").to_dict()
    for key, value in change.items():
        if isinstance(value, dict):
            data[key].update(value)
        else:
            data[key] = value
    with pytest.raises(InputError, match=message):
        ModelConfig.from_dict(data)


def test_resolution_needs_whole_coarsest_level_only():
    """The coarsest pyramid level is 1/128 of the input: 384 (levels 12, 6, 3) runs end to end."""
    config = dataclasses.replace(get_preset("tiny"), input_resolution=384)
    config.validate()
    network = DetectionNetwork(config).eval()
    K_crop = torch.tensor([[[300.0, 0.0, 192.0], [0.0, 300.0, 192.0]]])
    with torch.no_grad():
        output = network(torch.zeros(1, 3, 384, 384), K_crop)
    assert output.conf.shape == (1, config.num_candidates)
    assert output.image_features.shape[-2:] == (48, 48)


def test_dict_round_trip():
    config = get_preset("tiny-fixed")
    assert ModelConfig.from_dict(config.to_dict()) == config
