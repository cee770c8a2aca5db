"""Average the weights of model files of one architecture (checkpoint averaging).

Two snapshots of one training lineage (e.g. a run and its low-learning-rate continuation) sit
near each other in weight space; their mean is often better than either (stochastic weight
averaging, "model soups"), at no training cost.  Floating-point tensors are averaged in float32,
integer ones (counters) are taken from the first file, as are the config, the body-model name
and the stored tracker settings.

    python tools/average_models.py A.safetensors B.safetensors --out mean.safetensors --half
"""

from __future__ import annotations

import argparse
import sys

import torch

from comotion.errors import InputError, report_errors
from comotion.model.checkpoint import load_model_file, save_model_file


def average_state_dicts(states: list[dict[str, torch.Tensor]], names: list[str]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the floating-point tensors of ``states`` (same keys and shapes);
    other tensors come from the first.  ``names`` label the states in errors."""
    first = states[0]
    for state, name in zip(states[1:], names[1:]):
        if state.keys() != first.keys():
            different = sorted(state.keys() ^ first.keys())
            raise InputError(f"{name}: not the same network as {names[0]} (tensors differ: {', '.join(different[:3])})")
        for key, value in state.items():
            if value.shape != first[key].shape:
                raise InputError(f"{name}: {key} has shape {tuple(value.shape)}, {names[0]} {tuple(first[key].shape)}")
    return {
        key: torch.stack([s[key].float() for s in states]).mean(dim=0) if value.is_floating_point() else value
        for key, value in first.items()
    }


@report_errors
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model files (.safetensors / .pt) of one architecture")
    parser.add_argument("--out", required=True, help="where to write the averaged model")
    parser.add_argument("--half", action="store_true", help="store the weights as float16")
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        raise InputError("give at least two model files to average")
    files = [load_model_file(path) for path in args.models]
    for path, model in zip(args.models[1:], files[1:]):
        if model.config != files[0].config:
            raise InputError(f"{path}: its config differs from {args.models[0]}'s; only one architecture can be averaged")
    state = average_state_dicts([f.state_dict for f in files], args.models)
    first = files[0]
    path = save_model_file(args.out, first.config, state, first.body_model, first.tracker, args.half)
    print(f"mean of {len(files)} models written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
