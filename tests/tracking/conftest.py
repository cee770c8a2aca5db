"""Fixtures for the tracking tests: the parity folder's small model (same as tests/model)."""

from __future__ import annotations

import pytest

from tests.model.model_fixtures import parity_model_config


@pytest.fixture(scope="session")
def tracking_parity_model(parity_dir, fake_smpl_path, official_data_dir):
    """The parity weights through the official-checkpoint path, fake SMPL body, float32 CPU."""
    from comotion.model import CoMotion

    return CoMotion.from_official(
        parity_dir / "weights_detect.pt",
        parity_dir / "weights_refine.pt",
        fake_smpl_path,
        official_data_dir / "extra_smpl_reference.pt",
        config=parity_model_config(parity_dir),
    )
