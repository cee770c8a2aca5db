"""Tiny synthetic datasets for the training tests (rendered once per session, 64x64 pixels)."""

from __future__ import annotations

import pytest


def _write_clips(root, single_image: bool, clips: int, frames: int, people: tuple[int, int]):
    from comotion.body import load_body_model
    from comotion.synth import ClipGenerator, SceneConfig, SynthConfig, write_clip

    scene = SceneConfig(height=64, width=64, num_frames=frames, people=people, depth=(3.0, 6.0), occluders=(0, 0))
    generator = ClipGenerator(load_body_model("anny-lowres"), SynthConfig(scene=scene, single_image=single_image))
    for k in range(clips):
        clip = generator.generate([7, k])
        write_clip(root / f"clip_{k:06d}", clip.frames, clip.gt, clip.meta)
    return root


@pytest.fixture(scope="session")
def synth_images(tmp_path_factory):
    """2 single-image clips of 2 frames each, 1-2 people per image."""
    return _write_clips(tmp_path_factory.mktemp("synth_images"), single_image=True, clips=2, frames=2, people=(1, 2))


@pytest.fixture(scope="session")
def synth_video(tmp_path_factory):
    """1 video clip of 6 frames with 2 people."""
    return _write_clips(tmp_path_factory.mktemp("synth_video"), single_image=False, clips=1, frames=6, people=(2, 2))


def make_config(output_dir, data, stage: int = 1, steps: int = 4, batch_size: int = 2, frames: int = 1, **overrides):
    """A small TrainConfig for the tiny preset without dropout (runs reproduce exactly)."""
    from comotion.train import TrainConfig

    config = {
        "stage": stage,
        "output_dir": str(output_dir),
        "steps": steps,
        "batch_size": batch_size,
        "frames": frames,
        "seed": 3,
        "threads": 1,
        "log_every": 1,
        "model": {"preset": "tiny", "body_model": "anny-lowres", "config": {"encoder": {"dropout": 0.0}}},
        "optim": {"lr": 1e-3, "warmup_steps": 1},
        "objective": {"min_track_oks": 0.0},
        "data": data,
    }
    config.update(overrides)
    return TrainConfig.from_dict(config)
