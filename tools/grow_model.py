"""Grow a trained model without changing what it computes, so training goes on from it.

Two growths, either or both (``[model] init`` of a config then trains the grown file):

* ``--offset-readout``: adds the update module's offset readout (``UpdateConfig.offset_readout``,
  docs/training.md), one zero-initialised layer per cross-attention block.
* ``--detection-hidden H``: widens the detection head, its pose decoder and the pyramid fusion
  from ``h`` to ``H`` channels (``DetectionConfig.hidden_dim``; ``H`` a multiple of ``h``).  Every
  widened channel is a copy of an old one (function-preserving widening, Net2Net) and each layer
  that reads the copies splits its old weight between them at random, so the grown network
  computes the same outputs while the copies get different gradients and can come apart.

    python tools/grow_model.py runs/tiny/stage3/checkpoint.pt runs/tiny/grown.safetensors --offset-readout
    python tools/grow_model.py src/comotion/model/weights/default.safetensors runs/tiny/wide.safetensors --detection-hidden 128
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch
from torch import nn

from comotion.body import load_body_model
from comotion.errors import InputError, report_errors
from comotion.model import CoMotion
from comotion.train.loop import network_from_checkpoint, read_training_checkpoint

# The parts of the detection network whose widths are set by DetectionConfig.hidden_dim.
WIDENED_PARTS = ("detection_head", "pose_decoder", "fuse_features")


def load_network(path: Path, body_model: str | None) -> CoMotion:
    """A model file, or the network of a training checkpoint."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    source = read_training_checkpoint(path)
    if source is not None:
        return network_from_checkpoint(source, load_body_model(body_model) if body_model else None)
    return CoMotion.from_pretrained(path, body_model=body_model)


def _grown_copy(model: CoMotion, config) -> CoMotion:
    grown = CoMotion(config, model.body)
    grown.tracker_settings = dict(model.tracker_settings)
    return grown


def grow_offset_readout(model: CoMotion) -> CoMotion:
    """The same network with ``offset_readout`` on: new layers zero, every other weight copied."""
    if model.config.update.offset_readout:
        raise InputError("the model already has the offset readout")
    config = dataclasses.replace(model.config, update=dataclasses.replace(model.config.update, offset_readout=True))
    grown = _grown_copy(model, config)
    missing, unexpected = grown._network_state_module().load_state_dict(model._network_state_module().state_dict(), strict=False)
    assert not unexpected and all(".embed_offsets." in key for key in missing), (missing, unexpected)
    return grown.eval()


def _input_dim(module: nn.Module) -> int | None:
    """The weight dimension a layer reads its input channels along (None: elementwise)."""
    if isinstance(module, nn.ConvTranspose2d):
        return 0
    if isinstance(module, (nn.Linear, nn.Conv2d)) and getattr(module, "groups", 1) == 1:
        return 1
    return None


def _widen_tensor(old: torch.Tensor, shape: torch.Size, input_dim: int | None, generator: torch.Generator) -> torch.Tensor:
    """``old`` tiled to ``shape``; along the input dimension the copies share the old weight.

    New channel ``i`` of a widened dimension is old channel ``i mod n``.  The copies of one input
    channel carry random shares of its weight that sum to the old weight, so a layer fed the
    duplicated activations ``[x, x, ...]`` still computes ``W x``.
    """
    new = old.repeat(*(after // before for before, after in zip(old.shape, shape)))
    if input_dim is not None and shape[input_dim] != old.shape[input_dim]:
        copies = shape[input_dim] // old.shape[input_dim]
        shares = torch.rand(shape, generator=generator, dtype=torch.float64) + 0.5
        grouped = shares.unflatten(input_dim, (copies, old.shape[input_dim]))
        shares = (grouped / grouped.sum(dim=input_dim, keepdim=True)).flatten(input_dim, input_dim + 1)
        new = new.double() * shares
    return new.to(old.dtype)


def widen_detection(model: CoMotion, hidden_dim: int, seed: int = 0) -> CoMotion:
    """The same network with ``detection.hidden_dim`` widened to ``hidden_dim`` (see the module doc)."""
    old_hidden = model.config.detection.hidden_dim
    if hidden_dim <= old_hidden or hidden_dim % old_hidden:
        raise InputError(f"--detection-hidden {hidden_dim} must be a larger multiple of the model's hidden_dim {old_hidden}")
    config = dataclasses.replace(model.config, detection=dataclasses.replace(model.config.detection, hidden_dim=hidden_dim))
    grown = _grown_copy(model, config)
    network = grown._network_state_module()
    state = network.state_dict()
    old_state = model._network_state_module().state_dict()
    generator = torch.Generator().manual_seed(seed)
    widened = tuple(f"detection_module.{part}." for part in WIDENED_PARTS)
    for key, value in state.items():
        if not key.startswith(widened):
            state[key] = old_state[key]
            continue
        module_name, _, leaf = key.rpartition(".")
        input_dim = _input_dim(network.get_submodule(module_name)) if leaf == "weight" else None
        state[key] = _widen_tensor(old_state[key], value.shape, input_dim, generator)
    network.load_state_dict(state)
    return grown.eval()


@report_errors
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="model file or training checkpoint")
    parser.add_argument("output", type=Path, help="model file to write (.safetensors or .pt)")
    parser.add_argument("--offset-readout", action="store_true", help="add the update module's offset readout")
    parser.add_argument("--detection-hidden", type=int, default=None, metavar="H", help="widen the detection head to H channels")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weight shares (--detection-hidden)")
    parser.add_argument("--half", action="store_true", help="store the weights as float16")
    parser.add_argument("--body-model", default=None, help="body model (default: the source's)")
    args = parser.parse_args(argv)
    if not args.offset_readout and args.detection_hidden is None:
        raise InputError("nothing to grow: give --offset-readout and/or --detection-hidden H")
    model = load_network(args.source, args.body_model)
    if args.offset_readout:
        model = grow_offset_readout(model)
    if args.detection_hidden is not None:
        model = widen_detection(model, args.detection_hidden, args.seed)
    print(f"wrote {model.save(args.output, half=args.half)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
