"""The training configs shipped in ``configs/`` are valid (the model card cites them as the runs' recipes)."""

from __future__ import annotations

import pytest

from comotion.train.config import load_config

from ..conftest import REPO_ROOT

CONFIGS = sorted((REPO_ROOT / "configs").glob("*.toml"))


def test_configs_folder_is_found():
    assert CONFIGS, f"no configs under {REPO_ROOT / 'configs'}"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_config_loads(path):
    config = load_config(path)
    assert config.stage in (1, 2, 3)
    assert config.data, f"{path.name}: no [[data]] source"
