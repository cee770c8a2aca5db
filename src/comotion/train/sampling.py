"""Deterministic dataset mixing: the batch of step ``s`` depends only on the seed and ``s``.

The global batch of a step is drawn from ``numpy.random.default_rng([seed, step])``: per sample a
dataset (by the mixture weights), an item (uniformly) and an augmentation seed.  Data-parallel
process ``r`` of ``w`` takes the ``r``-th contiguous slice, so one process and ``w`` processes
see the same global batch, and resuming at step ``s`` reproduces the data order exactly without
any sampler state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from comotion.errors import InputError
from comotion.train.data import (
    KeypointImages,
    PanZoomClips,
    Sample,
    SmplSequences,
    SyntheticClips,
    TrainingDataset,
    collate,
    prepare_sample,
)


@dataclass
class Draw:
    """One sample of a step: dataset number, item index and augmentation seed."""

    dataset: int
    index: int
    seed: int


class MixtureSampler:
    """Draws the global batch of any step from datasets of the given sizes and weights.

    Args:
        sizes: number of items per dataset.
        weights: relative sampling weights (normalised here).
        batch_size: global batch size.
        seed: run seed.
    """

    def __init__(self, sizes: list[int], weights: list[float], batch_size: int, seed: int) -> None:
        if len(sizes) != len(weights) or not sizes:
            raise InputError("need one weight per dataset and at least one dataset")
        if any(size < 1 for size in sizes):
            raise InputError("every dataset of the mixture needs at least one item")
        self.sizes = list(sizes)
        probabilities = np.asarray(weights, dtype=np.float64)
        self.probabilities = probabilities / probabilities.sum()
        self.batch_size = batch_size
        self.seed = seed

    def global_batch(self, step: int) -> list[Draw]:
        rng = np.random.default_rng([self.seed, step])
        datasets = rng.choice(len(self.sizes), size=self.batch_size, p=self.probabilities)
        indices = [int(rng.integers(self.sizes[d])) for d in datasets]
        seeds = rng.integers(0, 2**31 - 1, size=self.batch_size)
        return [Draw(int(d), i, int(s)) for d, i, s in zip(datasets, indices, seeds)]

    def local_batch(self, step: int, rank: int, world_size: int) -> list[Draw]:
        if self.batch_size % world_size:
            raise InputError(f"batch_size {self.batch_size} is not divisible by the {world_size} processes")
        share = self.batch_size // world_size
        return self.global_batch(step)[rank * share : (rank + 1) * share]


class StepBatches(torch.utils.data.Dataset):
    """``dataset[step] -> (Sample batch, seeds (B,))``: this process's batch of a step, cropped to
    the network resolution.  Use with ``DataLoader(..., batch_size=None, sampler=range(start, stop))``."""

    def __init__(
        self,
        datasets: list[TrainingDataset],
        sampler: MixtureSampler,
        resolution: int,
        zoom: tuple[float, float],
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.datasets = datasets
        self.sampler = sampler
        self.resolution = resolution
        self.zoom = zoom
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, step: int) -> tuple[Sample, torch.Tensor]:
        draws = self.sampler.local_batch(step, self.rank, self.world_size)
        samples = [prepare_sample(self.datasets[d.dataset], d.index, self.resolution, self.zoom, d.seed) for d in draws]
        return collate(samples), torch.tensor([d.seed for d in draws], dtype=torch.long)


def build_datasets(config, body) -> list[TrainingDataset]:
    """The datasets of a :class:`~comotion.train.config.TrainConfig`'s ``data`` list."""
    datasets = []
    for source in config.data:
        frames = 1 if source.pan_zoom else config.frames
        if source.kind == "synthetic":
            dataset = SyntheticClips(
                source.path, num_frames=frames, min_visible_fraction=source.min_visible_fraction, frame_step=source.frame_step
            )
        elif source.kind == "smpl":
            dataset = SmplSequences(source.path, body, num_frames=frames)
        else:
            if not source.images:
                raise InputError(f"data source {source.path!r}: kind {source.kind!r} needs 'images' (the image root)")
            dataset = KeypointImages(source.path, source.images, num_frames=frames, pseudo_labels=source.pseudo_labels or None, body=body)
        if source.pan_zoom and config.frames > 1:
            dataset = PanZoomClips(dataset, config.frames)
        datasets.append(dataset)
    return datasets
