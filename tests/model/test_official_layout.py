"""The official full-size configuration has exactly the official checkpoints' keys, shapes and sizes.

Built on the ``meta`` device: no memory is allocated for its 365M parameters.
"""

import json

import pytest
import torch

from comotion.model.config import get_preset
from comotion.model.detect import DetectionNetwork
from comotion.model.update import UpdateNetwork


def _read_key_list(path) -> list[tuple[str, list[int]]]:
    entries = []
    for line in path.read_text().splitlines():
        if line.strip():
            key, shape = line.split("\t")
            entries.append((key, json.loads(shape)))
    return entries


def _state_shapes(module) -> list[tuple[str, list[int]]]:
    return [(key, list(value.shape)) for key, value in module.state_dict().items()]


@pytest.fixture(scope="module")
def official_networks():
    config = get_preset("official")
    with torch.device("meta"):
        return DetectionNetwork(config), UpdateNetwork(config)


@pytest.mark.parametrize("which, listing", [(0, "official_full_detect_keys.txt"), (1, "official_full_refine_keys.txt")])
def test_official_state_dict_layout(official_networks, parity_dir, which, listing):
    expected = _read_key_list(parity_dir / listing)
    ours = _state_shapes(official_networks[which])
    assert dict(ours) == dict(expected)
    assert [key for key, _ in ours] == [key for key, _ in expected]  # even the order


def test_official_parameter_counts(official_networks, parity_dir):
    summary = json.loads((parity_dir / "official_full_summary.json").read_text())
    for network, name in zip(official_networks, ("detect", "refine")):
        assert sum(p.numel() for p in network.parameters()) == summary[name]["num_parameters"]
        by_module = {child: sum(p.numel() for p in module.parameters()) for child, module in network.named_children()}
        expected = summary[name]["parameters_by_top_module"]
        assert {k: v for k, v in by_module.items() if k in expected} == expected
        buffers = sum(b.numel() for _, b in network.named_buffers())
        assert buffers == summary[name]["num_persistent_buffer_elements"]


@pytest.mark.parametrize("which, listing", [(0, "small_detect_keys.txt"), (1, "small_refine_keys.txt")])
def test_parity_config_state_dict_layout(parity_config, parity_dir, which, listing):
    with torch.device("meta"):
        network = (DetectionNetwork, UpdateNetwork)[which](parity_config)
    assert dict(_state_shapes(network)) == dict(_read_key_list(parity_dir / listing))


def test_parity_small_preset_matches_shipped_parity_config(parity_config, parity_dir):
    if json.loads((parity_dir / "config.json").read_text()).get("fixture_set") != "public":
        pytest.skip("the parity-small preset describes the public fixture set")
    assert get_preset("parity-small") == parity_config
