"""Add the optional update-module offset readout to a trained model, keeping its weights.

``UpdateConfig.offset_readout`` adds one zero-initialised layer per cross-attention block
(docs/training.md), so the grown model computes exactly what the original did until it is
trained further (``[model] init`` of a stage-2/3 config):

    python tools/grow_model.py runs/tiny/stage3/checkpoint.pt runs/tiny/grown.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from comotion.body import load_body_model
from comotion.errors import InputError, report_errors
from comotion.model import CoMotion
from comotion.train.loop import network_from_checkpoint, read_training_checkpoint


def load_network(path: Path, body_model: str | None) -> CoMotion:
    """A model file, or the network of a training checkpoint."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    source = read_training_checkpoint(path)
    if source is not None:
        return network_from_checkpoint(source, load_body_model(body_model) if body_model else None)
    return CoMotion.from_pretrained(path, body_model=body_model)


def grow_offset_readout(model: CoMotion) -> CoMotion:
    """The same network with ``offset_readout`` on: new layers zero, every other weight copied."""
    if model.config.update.offset_readout:
        raise InputError("the model already has the offset readout")
    config = dataclasses.replace(model.config, update=dataclasses.replace(model.config.update, offset_readout=True))
    grown = CoMotion(config, model.body)
    missing, unexpected = grown._network_state_module().load_state_dict(model._network_state_module().state_dict(), strict=False)
    assert not unexpected and all(".embed_offsets." in key for key in missing), (missing, unexpected)
    grown.tracker_settings = dict(model.tracker_settings)
    return grown.eval()


@report_errors
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="model file or training checkpoint")
    parser.add_argument("output", type=Path, help="model file to write (.safetensors or .pt)")
    parser.add_argument("--body-model", default=None, help="body model (default: the source's)")
    args = parser.parse_args(argv)
    grown = grow_offset_readout(load_network(args.source, args.body_model))
    print(f"wrote {grown.save(args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
