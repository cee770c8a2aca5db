"""Fixtures for the network tests: the parity folder's small model (see model_fixtures.py)."""

from __future__ import annotations

import pytest
import torch

from comotion.model import CoMotion, ModelConfig

from .model_fixtures import parity_model_config


@pytest.fixture(scope="session")
def parity_config(parity_dir) -> ModelConfig:
    return parity_model_config(parity_dir)


@pytest.fixture(scope="session")
def parity_model(parity_dir, parity_config, fake_smpl_path, official_data_dir) -> CoMotion:
    """The parity folder's weights loaded through the official-checkpoint path, fake SMPL body."""
    return CoMotion.from_official(
        parity_dir / "weights_detect.pt",
        parity_dir / "weights_refine.pt",
        fake_smpl_path,
        official_data_dir / "extra_smpl_reference.pt",
        config=parity_config,
    )


@pytest.fixture(scope="session")
def detect_fixture(parity_dir) -> dict:
    return torch.load(parity_dir / "detect.pt", weights_only=True)
