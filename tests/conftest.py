"""Shared test fixtures.

Reference data lives outside the repository, in the read-only ``shared/`` folder that sits next
to the clone in CI (``../shared``).  Tests find it through environment variables:

* ``COMOTION_SHARED_DIR``  (default ``<repo>/../shared``)
* ``COMOTION_PARITY_DIR``  (default ``$COMOTION_SHARED_DIR/parity``)
* ``COMOTION_METRICS_DIR`` (default ``$COMOTION_SHARED_DIR/metrics``)

When a folder is absent the tests that need it are skipped with the reason, except in CI
(``CI=true`` or ``COMOTION_REQUIRE_FIXTURES=1``), where a missing folder is a failure: CI must
never pass by skipping the parity and metric checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _fixtures_required() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true") or os.environ.get(
        "COMOTION_REQUIRE_FIXTURES", ""
    ) == "1"


def _shared_dir() -> Path:
    return Path(os.environ.get("COMOTION_SHARED_DIR", REPO_ROOT.parent / "shared"))


def _require_dir(path: Path, variable: str) -> Path:
    if not path.is_dir():
        reason = f"reference data not found at {path} (set {variable})"
        if _fixtures_required():
            pytest.fail(reason + " -- required in CI", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """Folder with the reference implementation's parity fixtures (see its README)."""
    default = _shared_dir() / "parity"
    return _require_dir(Path(os.environ.get("COMOTION_PARITY_DIR", default)), "COMOTION_PARITY_DIR")


@pytest.fixture(scope="session")
def metrics_dir() -> Path:
    """Folder with the PoseTrack21-layout evaluation fixtures and ``expected.json``."""
    default = _shared_dir() / "metrics"
    return _require_dir(Path(os.environ.get("COMOTION_METRICS_DIR", default)), "COMOTION_METRICS_DIR")


@pytest.fixture(scope="session")
def official_data_dir(parity_dir: Path) -> Path:
    """Folder holding the official ``extra_smpl_reference.pt`` (never copied into the project)."""
    return _require_dir(parity_dir / "official_data", "COMOTION_PARITY_DIR")


@pytest.fixture(scope="session")
def fake_smpl_path(parity_dir: Path, tmp_path_factory) -> Path:
    """The parity folder's fake SMPL pickle, decompressed to a temporary ``SMPL_NEUTRAL.pkl``."""
    import gzip

    src = parity_dir / "fake_smpl" / "SMPL_NEUTRAL.pkl.gz"
    if not src.is_file():
        pytest.fail(f"{src} missing from the parity folder", pytrace=False)
    dst = tmp_path_factory.mktemp("fake_smpl") / "SMPL_NEUTRAL.pkl"
    dst.write_bytes(gzip.decompress(src.read_bytes()))
    return dst


@pytest.fixture(scope="session")
def parity_model(parity_dir: Path, fake_smpl_path: Path, official_data_dir: Path):
    """The parity folder's weights through the official-checkpoint path, with the fake SMPL body.

    One instance for the whole session: the model, tracking and command tests all use it.
    """
    from comotion.model import CoMotion

    from tests.model.model_fixtures import parity_model_config

    return CoMotion.from_official(
        parity_dir / "weights_detect.pt",
        parity_dir / "weights_refine.pt",
        fake_smpl_path,
        official_data_dir / "extra_smpl_reference.pt",
        config=parity_model_config(parity_dir),
    )
