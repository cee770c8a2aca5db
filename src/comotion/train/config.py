"""Training configuration: one TOML file per run (see configs/ and docs/training.md).

Relative paths in the file are relative to the working directory the run is started from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from comotion.errors import InputError
from comotion.train.stages import LOSS_NAMES, UPDATE_LOSS_NAMES, ObjectiveConfig

DATA_KINDS = ("synthetic", "smpl", "coco", "posetrack")


@dataclass
class DataSource:
    """One dataset of the mixture.

    Attributes:
        kind: ``synthetic`` (comotion synth clips), ``smpl`` (BEDLAM-style npz sequences),
            ``coco`` or ``posetrack`` (keypoint JSON).
        path: clip folder root / npz folder / JSON file.
        weight: relative sampling weight in the mixture.
        images: image root of ``coco``/``posetrack`` JSON ``file_name``s.
        pseudo_labels: optional SMPL pseudo-label npz for ``coco``/``posetrack``.
        pan_zoom: make multi-frame items from single frames by a panning/zooming crop.
        min_visible_fraction: ``synthetic``: less visible people are not detection targets.
        frame_step: ``synthetic``: multi-frame items take every ``frame_step``-th frame of a
            clip (faster motion between steps of the unroll).
    """

    kind: str
    path: str
    weight: float = 1.0
    images: str = ""
    pseudo_labels: str = ""
    pan_zoom: bool = False
    min_visible_fraction: float = 0.1
    frame_step: int = 1


@dataclass
class ModelSection:
    """Which network to train.

    Attributes:
        preset: model config preset for training from scratch (``tiny``, ``official``, ...).
        config: overrides of the preset, nested like :class:`comotion.model.ModelConfig`
            (e.g. ``{"encoder": {"dropout": 0.0}}``).
        init: start from this: a training checkpoint of an earlier stage, a model file in our
            format, or a folder with the official checkpoints (fine-tuning); empty = scratch.
        body_model: body model of the losses (``anny``, ``anny-lowres`` or a SMPL path).
        input_resolution: side of the network input while training (pixels); 0 keeps the
            preset's or the ``init`` network's.  No weight depends on it, so a model that runs at
            384 px (the default model) can go on training at 256 px on 256 px data.
    """

    preset: str = "tiny"
    config: dict = field(default_factory=dict)
    init: str = ""
    body_model: str = "anny"
    input_resolution: int = 0


@dataclass
class OptimSection:
    """AdamW with linear warm-up and cosine decay to ``min_lr_ratio * lr``."""

    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0


@dataclass
class TrainConfig:
    """A training run.

    Attributes:
        stage: 1 (detection), 2 (update, short clips) or 3 (update, long clips, checkpointing).
        output_dir: checkpoints, CSV log and the final model file go here.
        steps: optimizer steps in total.
        batch_size: global batch (split evenly over data-parallel processes).
        frames: frames per sample (1 for stage 1).
        seed: seeds the data order, augmentation and every random choice.
        num_workers: data-loading worker processes per training process.
        threads: torch intra-op threads (0: leave the default).
        zoom: range of the random square crop's side relative to the letterbox side.
        log_every: steps between CSV log lines.
        checkpoint_every: steps between checkpoints.
        checkpoint_minutes: also checkpoint when this much time passed since the last one.
        snapshot_every: also keep the network every this many steps as a model file,
            ``snapshots/step<N>.safetensors`` (for weight averaging, ``tools/average_models.py``);
            0 keeps none.
    """

    stage: int
    output_dir: str
    steps: int
    batch_size: int
    data: list[DataSource]
    frames: int = 1
    seed: int = 0
    num_workers: int = 0
    threads: int = 0
    zoom: tuple[float, float] = (0.6, 1.0)
    log_every: int = 10
    checkpoint_every: int = 500
    checkpoint_minutes: float = 10.0
    snapshot_every: int = 0
    model: ModelSection = field(default_factory=ModelSection)
    optim: OptimSection = field(default_factory=OptimSection)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)

    def validate(self) -> None:
        if self.stage not in (1, 2, 3):
            raise InputError(f"stage must be 1, 2 or 3, got {self.stage}")
        if self.stage == 1 and self.frames != 1:
            raise InputError(f"stage 1 trains on single images: frames must be 1, got {self.frames}")
        if self.stage > 1 and self.frames < 2:
            raise InputError(f"stage {self.stage} unrolls over clips: frames must be at least 2, got {self.frames}")
        for name, value in (("steps", self.steps), ("batch_size", self.batch_size), ("log_every", self.log_every), ("checkpoint_every", self.checkpoint_every)):
            if value < 1:
                raise InputError(f"{name} must be at least 1, got {value}")
        if self.snapshot_every < 0:
            raise InputError(f"snapshot_every must be 0 (off) or positive, got {self.snapshot_every}")
        if not self.data:
            raise InputError("no [[data]] sources given")
        for source in self.data:
            if source.kind not in DATA_KINDS:
                raise InputError(f"data source {source.path!r}: kind {source.kind!r} unknown; choose one of {', '.join(DATA_KINDS)}")
            if source.weight <= 0:
                raise InputError(f"data source {source.path!r}: weight must be positive, got {source.weight}")
        known = LOSS_NAMES + tuple(name for name in UPDATE_LOSS_NAMES if name not in LOSS_NAMES)
        unknown = sorted(set(self.objective.weights) - set(known))
        if unknown:
            raise InputError(f"objective.weights: unknown loss(es) {', '.join(unknown)}; known: {', '.join(known)}")
        low, high = self.zoom
        if not 0 < low <= high:
            raise InputError(f"zoom must be [low, high] with 0 < low <= high, got {list(self.zoom)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> TrainConfig:
        data = dict(data)
        try:
            data["data"] = [_build(DataSource, source, f"{where}: [[data]]") for source in data.get("data", [])]
            data["model"] = _build(ModelSection, data.get("model", {}), f"{where}: [model]")
            data["optim"] = _build(OptimSection, data.get("optim", {}), f"{where}: [optim]")
            objective = dict(data.get("objective", {}))
            if "weights" in objective:
                objective["weights"] = {**ObjectiveConfig().weights, **objective["weights"]}
            data["objective"] = _build(ObjectiveConfig, objective, f"{where}: [objective]")
            if "zoom" in data:
                data["zoom"] = tuple(float(v) for v in data["zoom"])
            config = _build(cls, data, where)
        except TypeError as err:
            raise InputError(f"{where}: {err}") from None
        config.validate()
        return config


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a table, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}")
    required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in data]
    if missing:
        raise InputError(f"{where}: missing field(s) {', '.join(missing)}")
    return cls(**data)


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a TOML training config."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise InputError(f"{path}: cannot read config ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: invalid TOML ({err})") from None
    return TrainConfig.from_dict(data, where=str(path))
