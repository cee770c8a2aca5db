"""The training loop: one process or data-parallel (``torchrun``), exact resume, checkpoints, logs.

Run state lives in ``OUTPUT_DIR``:

* ``checkpoint.pt``: network + auxiliary head weights, optimizer, scheduler and step, written
  atomically every ``checkpoint_every`` steps, every ``checkpoint_minutes``, on SIGTERM/SIGINT
  and at the end.  ``--resume`` continues from it exactly: the data of a step depends only on
  the seed and the step (:mod:`~comotion.train.sampling`) and the torch random state is
  re-seeded from (seed, step, rank) at every step, so no other state is needed.
* ``log.csv``: step, learning rate, every loss term, gradient norm, steps skipped for a
  non-finite loss or gradient (this session), samples/s, elapsed seconds.
* ``model.safetensors``: the final model in our single-file format
  (``CoMotion.from_pretrained(file)`` loads it).
* ``snapshots/step<N>.safetensors``: with ``snapshot_every``, the network every that many steps
  in the same format, for averaging the weights of a run's late steps (``tools/average_models.py``).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import pickle
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from comotion.body import load_body_model
from comotion.errors import InputError
from comotion.model import CoMotion, ModelConfig, get_preset
from comotion.model.checkpoint import DETECTION_CHECKPOINT, REFINE_CHECKPOINT
from comotion.train.config import TrainConfig
from comotion.train.sampling import MixtureSampler, StepBatches, build_datasets
from comotion.train.stages import (
    LOSS_NAMES,
    UPDATE_LOSS_NAMES,
    DetectionObjective,
    KeypointHeatmapHead,
    UpdateObjective,
)

CHECKPOINT_KIND = "comotion-training-checkpoint"
CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.safetensors"
SNAPSHOT_DIR = "snapshots"


@dataclass
class Distributed:
    """This process's place in a data-parallel run (``rank 0 of 1`` for a single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group ``torchrun`` describes in the environment (gloo on CPU, NCCL on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float):
    """Learning-rate factor of step ``s``: linear warm-up to 1, then cosine decay to ``min_ratio``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _merge(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def read_training_checkpoint(path: Path) -> dict | None:
    """The contents of a checkpoint written by :func:`train`; ``None`` when ``path`` is something
    else (a model file, another file, nothing)."""
    if not path.is_file() or path.suffix == ".safetensors":
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError):
        return None
    return data if isinstance(data, dict) and data.get("kind") == CHECKPOINT_KIND else None


def network_from_checkpoint(source: dict, body=None) -> CoMotion:
    """The network of a training checkpoint's contents, with ``body`` (default: the checkpoint's
    body model)."""
    model = CoMotion(ModelConfig.from_dict(source["model_config"]), body or load_body_model(source["body_model"]))
    model._network_state_module().load_state_dict(source["network"])
    return model


def build_model(config: TrainConfig) -> tuple[CoMotion, KeypointHeatmapHead, dict | None]:
    """The model to train, its auxiliary heatmap head and (when initialised from a training
    checkpoint) that checkpoint.

    ``model.init`` may name a training checkpoint of an earlier stage (its network config wins),
    a model file in our format, or a folder with the official checkpoints (sized by the preset,
    ``extra_smpl_reference.pt`` next to them; fine-tuning); empty trains from scratch with the
    preset (plus overrides).  Starting stage 2/3 from a stage-1 checkpoint copies the
    detection's pose decoder into the update module's (the reference keeps them identical)
    when their widths agree.
    """
    body = load_body_model(config.model.body_model)
    preset_config = ModelConfig.from_dict(_merge(get_preset(config.model.preset).to_dict(), config.model.config))
    init = Path(config.model.init) if config.model.init else None
    source = read_training_checkpoint(init) if init is not None else None
    if source is not None:
        model = network_from_checkpoint(source, body)
    elif init is not None and init.is_dir():
        # Official checkpoints carry no config: the preset (plus overrides) must match their sizes.
        model = CoMotion.from_official(init / DETECTION_CHECKPOINT, init / REFINE_CHECKPOINT, body, config=preset_config)
    elif init is not None:
        if not init.is_file():
            raise InputError(f"model.init: {init} does not exist")
        model = CoMotion.from_pretrained(init, body_model=body)
    else:
        model = CoMotion(preset_config, body)
    if config.model.input_resolution:
        model.set_input_resolution(config.model.input_resolution)
    heatmap_head = KeypointHeatmapHead(model.config.encoder.output_dim)
    if source is not None and "heatmap_head" in source:
        heatmap_head.load_state_dict(source["heatmap_head"])
    if source is not None and source.get("stage") == 1 and config.stage > 1:
        _copy_pose_decoder(model)
    return model.train(), heatmap_head, source


def export_model(checkpoint_path: str | Path, output_path: str | Path, half: bool = False) -> Path:
    """Write the network of a training checkpoint as a model file (our single-file format).

    Lets a run that is stopped before its last step (``--until``, SIGTERM) still produce a file
    that ``CoMotion.from_pretrained`` loads; the auxiliary heatmap head is not part of it.
    ``half`` stores the weights as float16.
    """
    source = read_training_checkpoint(Path(checkpoint_path))
    if source is None:
        raise InputError(f"{checkpoint_path}: not a training checkpoint written by comotion train")
    return network_from_checkpoint(source).save(output_path, half=half)


def _copy_pose_decoder(model: CoMotion) -> None:
    """Start the update's pose decoder from the trained detection one where the widths agree
    (the official sizes; the tiny preset's update decoder is wider and starts fresh)."""
    source = model.detection_module.pose_decoder.state_dict()
    target = model.update_module.pose_decoder.state_dict()
    if all(source[k].shape == target[k].shape for k in target):
        model.update_module.pose_decoder.load_state_dict(source)


def build_objective(config: TrainConfig, model: CoMotion, heatmap_head: KeypointHeatmapHead):
    objective_config = config.objective
    if config.stage == 1:
        return DetectionObjective(model, heatmap_head, objective_config)
    if config.stage == 3:
        objective_config = dataclasses.replace(objective_config, checkpoint_unroll=True)
    return UpdateObjective(model, objective_config)


def _save_atomic(payload: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


class _StopFlag:
    """Set by SIGTERM/SIGINT; the loop checkpoints and exits after the current step."""

    def __init__(self) -> None:
        self.raised = False
        self._previous = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        self.raised = True


def _ignore_sigterm(worker_id: int) -> None:
    """Data-loading workers leave SIGTERM to the main process: schedulers signal every process
    of a job, and a worker killed under the main loop would crash it before it checkpoints."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def train(
    config: TrainConfig, resume: bool = False, device: str | None = None, progress: bool = True, until_step: int | None = None
) -> Path:
    """Run (or continue) a training run; returns the output folder.

    Args:
        config: the run.
        resume: continue from ``OUTPUT_DIR/checkpoint.pt`` (error if missing).
        device: ``cpu``, ``cuda``, ``cuda:1`` ...; default: CUDA (this process's local GPU)
            when available, else CPU.
        progress: show a tqdm progress bar (main process only).
        until_step: stop this session (with a checkpoint) once this many steps are done, to
            train a long run in pieces; ``--resume`` continues it.
    """
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dist_info = init_distributed(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", dist_info.local_rank)
    output_dir = Path(config.output_dir)
    checkpoint_path = output_dir / CHECKPOINT_NAME
    if resume and not checkpoint_path.is_file():
        raise InputError(f"--resume: no checkpoint at {checkpoint_path}")
    if not resume and checkpoint_path.is_file():
        raise InputError(f"{checkpoint_path} exists: pass --resume to continue that run or choose another output_dir")

    if dist_info.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
    stop_step = config.steps if until_step is None else min(until_step, config.steps)
    torch.manual_seed(config.seed)  # the same initial weights in every process and every run
    model, heatmap_head, _ = build_model(config)
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True) if resume else None
    if state is not None:  # before the objective is built: it keeps the model's mean pose
        model._network_state_module().load_state_dict(state["network"])
        heatmap_head.load_state_dict(state["heatmap_head"])
    objective = build_objective(config, model, heatmap_head).to(device)
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(config.optim.warmup_steps, config.steps, config.optim.min_lr_ratio)
    )
    start_step = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_step = int(state["step"])
    trainer = objective
    if dist_info.enabled:
        # find_unused_parameters: the official layout has a layer the forward never uses
        # (fuse_features.dc2, spec 3.6), so its gradient must not be waited for.
        trainer = torch.nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )

    datasets = build_datasets(config, model.body)
    sampler = MixtureSampler([len(d) for d in datasets], [s.weight for s in config.data], config.batch_size, config.seed)
    batches = StepBatches(datasets, sampler, model.config.input_resolution, config.zoom, dist_info.rank, dist_info.world_size)
    loader = torch.utils.data.DataLoader(
        batches,
        batch_size=None,
        sampler=range(start_step, stop_step),
        num_workers=config.num_workers,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(config.seed),
        worker_init_fn=_ignore_sigterm,
    )
    names = LOSS_NAMES if config.stage == 1 else UPDATE_LOSS_NAMES
    log = _CsvLog(output_dir / "log.csv", ["step", "lr", *names, "total", "grad_norm", "skipped_steps", "samples_per_s", "elapsed_s"]) if dist_info.is_main else None

    def save(step: int) -> None:
        if not dist_info.is_main:
            return
        _save_atomic(
            {
                "kind": CHECKPOINT_KIND,
                "stage": config.stage,
                "step": step,
                "config": config.to_dict(),
                "model_config": model.config.to_dict(),
                "body_model": model.body.name,
                "network": model._network_state_module().state_dict(),
                "heatmap_head": heatmap_head.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
            },
            checkpoint_path,
        )

    stop = _StopFlag()
    stop.install()
    bar = None
    if progress and dist_info.is_main:
        from tqdm import tqdm

        bar = tqdm(total=config.steps, initial=start_step, desc=f"stage {config.stage}", unit="step")
    trainer.train()
    last_save = time.monotonic()
    window_start, window_samples = time.monotonic(), 0
    run_start = time.monotonic()
    done = start_step
    skipped = 0
    try:
        for step, (batch, seeds) in zip(range(start_step, stop_step), loader):
            torch.manual_seed(config.seed * 1_000_003 + step * 1_009 + dist_info.rank)
            terms = trainer(batch.to(device), seeds)
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, config.optim.grad_clip)
            # A non-finite loss or gradient on any rank skips the update everywhere (and is
            # counted in the log) instead of poisoning the weights.
            finite = torch.isfinite(grad_norm.detach() + terms["total"].detach()).float().reshape(1).to(device)
            if dist_info.enabled:
                dist.all_reduce(finite, op=dist.ReduceOp.MIN)
            if finite.item() > 0:
                optimizer.step()
                scheduler.step()
            else:
                skipped += 1
                with warnings.catch_warnings():  # the schedule follows the step count regardless
                    warnings.simplefilter("ignore", UserWarning)
                    scheduler.step()
            window_samples += config.batch_size
            done = step + 1
            values = torch.stack([terms[name].detach() for name in (*names, "total")])
            stop_now = torch.tensor([float(stop.raised)], device=device)
            if dist_info.enabled:
                dist.all_reduce(values)
                values /= dist_info.world_size
                dist.all_reduce(stop_now)
            if log is not None and (done % config.log_every == 0 or done == config.steps):
                elapsed = time.monotonic() - window_start
                log.write([done, scheduler.get_last_lr()[0], *values.tolist(), float(grad_norm), skipped, window_samples / max(elapsed, 1e-9), time.monotonic() - run_start])
                window_start, window_samples = time.monotonic(), 0
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{values[-1].item():.4f}")
            due = done % config.checkpoint_every == 0 or time.monotonic() - last_save > 60 * config.checkpoint_minutes
            if due or stop_now.item() > 0 or done == stop_step:
                save(done)
                last_save = time.monotonic()
            if config.snapshot_every and done % config.snapshot_every == 0 and dist_info.is_main:
                model.save(output_dir / SNAPSHOT_DIR / f"step{done:06d}.safetensors")
            if stop_now.item() > 0:
                break
        if done >= config.steps and dist_info.is_main:
            model.save(output_dir / MODEL_NAME)
    finally:
        stop.uninstall()
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
        if dist_info.enabled and dist.is_initialized():
            # Exiting with a live gloo group can abort a rank at interpreter shutdown
            # ("terminate called without an active exception"); tear it down explicitly.
            dist.destroy_process_group()
    return output_dir


class _CsvLog:
    """Appends rows to a CSV file (header written once), flushing every row."""

    def __init__(self, path: Path, header: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.is_file()
        self._file = open(path, "a", newline="")  # noqa: SIM115 (kept open for the whole run)
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(header)

    def write(self, row: list) -> None:
        self._writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
        self._file.flush()

    def close(self) -> None:
        self._file.close()
