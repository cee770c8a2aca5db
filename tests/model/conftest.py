"""Fixtures for the network tests: the parity folder's small model (see model_fixtures.py)."""

from __future__ import annotations

import pytest
import torch

from comotion.model import ModelConfig

from .model_fixtures import parity_model_config


@pytest.fixture(scope="session")
def parity_config(parity_dir) -> ModelConfig:
    return parity_model_config(parity_dir)


@pytest.fixture(scope="session")
def detect_fixture(parity_dir) -> dict:
    return torch.load(parity_dir / "detect.pt", weights_only=True)
