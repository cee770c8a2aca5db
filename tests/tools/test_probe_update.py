"""tools/probe_update.py: the update module unrolled from the ground truth, with and without video."""

import numpy as np
import pytest

from comotion.model import CoMotion
from comotion.synth import load_clip

from .conftest import load_tool, random_tiny_weights, run_tool


@pytest.fixture(scope="module")
def probe():
    return load_tool("probe_update")


@pytest.fixture(scope="module")
def probed(probe, tmp_path_factory):
    """A random tiny model probed on one 3-frame clip; returns (exit code, printed, model, clip)."""
    tmp_path = tmp_path_factory.mktemp("probe")
    weights = random_tiny_weights(tmp_path / "random.safetensors")
    argv = ["--weights", str(weights), "--seeds", "1000", "--frames", "3", "--size", "64", "--people", "2-2", "--jitter", "4", "--workdir", str(tmp_path)]
    return *run_tool(probe, argv), CoMotion.from_pretrained(weights, body_model="anny-lowres"), load_clip(tmp_path / "seed1000" / "clip")


def test_prints_video_frozen_and_still_errors(probed):
    code, printed, _, _ = probed
    assert code == 0
    lines = printed.strip().splitlines()
    assert lines[0].startswith("seed 1000:") and lines[-1].startswith("mean:")
    for name in ("video", "frozen", "still"):
        assert name in lines[-1]


def test_still_errors_start_at_zero_and_count_present_people(probe, probed):
    clip = probed[3]
    errors = probe.still_errors(clip)
    people = np.flatnonzero(clip.gt.present[:, 0])
    assert len(errors) == clip.gt.present[people].sum()
    assert np.allclose(errors[: len(people)], 0.0)


def test_frozen_and_video_unrolls_differ_only_after_the_first_frame(probe, probed):
    _, _, model, clip = probed
    video = probe.unroll_errors(model, clip, 4.0, frozen=False, seed=1)
    frozen = probe.unroll_errors(model, clip, 4.0, frozen=True, seed=1)
    first = clip.gt.present[:, 0].sum()
    assert video.shape == frozen.shape
    assert np.allclose(video[:first], frozen[:first])  # both see frame 0 first
    assert not np.allclose(video, frozen)
