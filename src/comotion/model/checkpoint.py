"""Reading and writing network weights: the official checkpoints and our single-file format.

Official weights are two flat state dicts (``comotion_detection_checkpoint.pt``,
``comotion_refine_checkpoint.pt``) plus the official data file ``extra_smpl_reference.pt`` (mean
pose and SMPL->COCO regressor), which may not be redistributed: users point at it, or keep it where
the official repository has it (``data/smpl/`` next to the checkpoints).

Our own format is one file holding the config, the weights of both modules, the mean pose and
the body-model name: ``torch.save`` (``.pt``) or safetensors (``.safetensors``, config in the
metadata).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from comotion.errors import ComotionError, InputError

DETECTION_CHECKPOINT = "comotion_detection_checkpoint.pt"
REFINE_CHECKPOINT = "comotion_refine_checkpoint.pt"
EXTRA_SMPL_REFERENCE = "extra_smpl_reference.pt"
# Where the official repository keeps extra_smpl_reference.pt relative to the checkpoint folder.
EXTRA_SMPL_SEARCH = (".", "smpl", "data/smpl")
FORMAT_NAME = "comotion-model"
# What torch.load / safetensors raise for missing, truncated or foreign files.
READ_ERRORS = (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError)
FORMAT_VERSION = 1
LLAMA_Q_PROJ_SUFFIX = ".self_attn.q_proj.weight"


def read_state_dict(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """Load a flat ``torch.save``d state dict, with a one-line error if it is missing or unreadable."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except READ_ERRORS as err:
        raise InputError(
            f"{path}: cannot read {what} ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise InputError(f"{path}: {what} must be a flat state dict of tensors")
    return data


def _summarise(keys: list[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def load_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], what: str, assign: bool = False) -> None:
    """Load ``state_dict`` into ``module`` with exact key and shape matching.

    With ``assign`` the tensors replace the module's (which may then live on the ``meta``
    device: no memory or time is spent on weights that are overwritten anyway).
    Raises :class:`ComotionError` with one line naming missing, unexpected and mis-shaped keys.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    misshaped = [
        f"{k} {tuple(state_dict[k].shape)} != {tuple(expected[k].shape)}"
        for k in expected
        if k in state_dict and state_dict[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_summarise(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_summarise(unexpected)}")
    if misshaped:
        problems.append(f"mis-shaped keys: {_summarise(misshaped)}")
    if problems:
        raise ComotionError(f"{what} does not match the model configuration: " + "; ".join(problems))
    module.load_state_dict(state_dict, strict=True, assign=assign)
    left_on_meta = [name for name, t in (*module.named_parameters(), *module.named_buffers()) if t.is_meta]
    if left_on_meta:
        raise RuntimeError(f"tensors not covered by the state dict stayed on the meta device: {left_on_meta[:3]}")


def llama_head_dim(state_dict: dict[str, torch.Tensor], num_heads: int, what: str) -> int | None:
    """Self-attention head width stored in an update-module state dict (q_proj rows / heads).

    The reference's head width depends on the transformers version that built it (quirk Q1), so
    it is read from the weights.  Raises if layers disagree or rows do not split into heads;
    returns ``None`` when the state dict has no self-attention layer.
    """
    rows = {k: v.shape[0] for k, v in state_dict.items() if k.endswith(LLAMA_Q_PROJ_SUFFIX)}
    if not rows:
        return None
    distinct = sorted(set(rows.values()))
    if len(distinct) > 1:
        raise ComotionError(f"{what}: self-attention q_proj layers disagree in size ({distinct})")
    if distinct[0] % num_heads:
        key = next(iter(rows))
        raise ComotionError(f"{what}: {key} has {distinct[0]} rows, not a multiple of {num_heads} heads")
    return distinct[0] // num_heads


def find_extra_smpl_reference(explicit: str | Path | None, checkpoint_dir: Path) -> Path:
    """Path of the official ``extra_smpl_reference.pt``: the explicit one, or next to the checkpoints."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_dir():
            path = path / EXTRA_SMPL_REFERENCE
        if not path.is_file():
            raise InputError(f"official data file not found: {path}")
        return path
    for sub in EXTRA_SMPL_SEARCH:
        path = checkpoint_dir / sub / EXTRA_SMPL_REFERENCE
        if path.is_file():
            return path
    raise InputError(
        f"{EXTRA_SMPL_REFERENCE} (mean pose + COCO regressor of the official model) not found next to the "
        f"checkpoints in {checkpoint_dir} (looked in {', '.join(EXTRA_SMPL_SEARCH)}); it ships with the official "
        "repository in src/comotion_demo/data/smpl/ -- pass its path"
    )


def read_mean_pose(extra_reference: Path) -> torch.Tensor:
    """The ``mean_pose`` (72,) of the official data file."""
    try:
        data = torch.load(extra_reference, map_location="cpu", weights_only=True)
    except READ_ERRORS as err:
        raise InputError(f"{extra_reference}: cannot read official data file ({type(err).__name__})") from None
    mean_pose = data.get("mean_pose") if isinstance(data, dict) else None
    if not isinstance(mean_pose, torch.Tensor) or mean_pose.numel() != 72:
        raise InputError(f"{extra_reference}: expected a dict with a 72-value 'mean_pose'")
    return mean_pose.reshape(72).float()


def save_model_file(
    path: str | Path,
    config: dict,
    state_dict: dict[str, torch.Tensor],
    body_model: str,
    tracker: dict | None = None,
    half: bool = False,
) -> Path:
    """Write our single-file format (``.safetensors`` or anything else = ``torch.save``).

    Args:
        tracker: :class:`~comotion.tracking.TrackerConfig` fields tuned for these weights (the
            tracker starts from them instead of the reference defaults); ``None``/empty: none.
        half: store floating-point tensors as float16 (half the size; loading casts back to
            float32).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "config": config,
        "body_model": body_model,
        "tracker": dict(tracker or {}),
    }
    if path.suffix == ".safetensors":
        save_file(tensors, str(path), metadata={k: json.dumps(v) for k, v in meta.items()})
    else:
        torch.save({**meta, "state_dict": tensors}, path)
    return path


@dataclass
class ModelFile:
    """What :func:`load_model_file` read: config dict, float32 state dict, body-model name and
    the tracker settings stored with the weights (empty when none)."""

    config: dict
    state_dict: dict[str, torch.Tensor]
    body_model: str
    tracker: dict


def load_model_file(path: str | Path) -> ModelFile:
    """Read our single-file format (float16-stored tensors come back as float32)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as f:
                meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
                state_dict = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
        else:
            meta = torch.load(path, map_location="cpu", weights_only=True)
            state_dict = meta.get("state_dict") if isinstance(meta, dict) else None
    except (*READ_ERRORS, SafetensorError) as err:
        raise InputError(
            f"{path}: cannot read model file ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME or not isinstance(state_dict, dict):
        raise InputError(
            f"{path}: not a comotion model file (for the official weights pass the folder holding "
            f"{DETECTION_CHECKPOINT} and {REFINE_CHECKPOINT})"
        )
    if meta.get("version") != FORMAT_VERSION:
        raise InputError(
            f"{path}: model file version {meta.get('version')} is not supported (expected {FORMAT_VERSION})"
        )
    tracker = meta.get("tracker") or {}
    if not isinstance(tracker, dict):
        raise InputError(f"{path}: 'tracker' metadata must be a mapping of tracker settings")
    state_dict = {k: v.float() if v.dtype == torch.float16 else v for k, v in state_dict.items()}
    return ModelFile(meta["config"], state_dict, str(meta.get("body_model", "anny")), tracker)
