"""Fixtures for the I/O tests."""

from __future__ import annotations

import pytest

from comotion.body import BodyModel
from tests.io.io_fixtures import make_tiny_body


@pytest.fixture(scope="session")
def tiny_body() -> BodyModel:
    return make_tiny_body()
