"""``comotion train CONFIG``: run one training stage from a TOML config (docs/training.md).

One process here; for data-parallel training start ``torchrun --nproc_per_node N -m
comotion.train CONFIG`` (same options).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="training config (TOML), e.g. configs/tiny_stage1.toml")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/checkpoint.pt exactly")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if available, else cpu)")
    parser.add_argument("--steps", type=int, default=None, help="override the config's total number of steps")
    parser.add_argument(
        "--until", type=int, default=None, metavar="STEP", help="stop (with a checkpoint) after this step; --resume continues"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--export-model",
        metavar="PATH",
        default=None,
        help="write the model file (.safetensors/.pt) from OUTPUT_DIR/checkpoint.pt and exit, without training",
    )
    parser.add_argument("--half", action="store_true", help="with --export-model: store the weights as float16")


def run(args: argparse.Namespace) -> int:
    from comotion.errors import InputError
    from comotion.train import load_config, train

    config = load_config(args.config)
    if args.export_model is not None:
        from pathlib import Path

        from comotion.train.loop import export_model

        path = export_model(Path(config.output_dir) / "checkpoint.pt", args.export_model, half=args.half)
        print(f"model written to {path}")
        return 0
    if args.steps is not None:
        if args.steps < 1:
            raise InputError(f"--steps must be at least 1, got {args.steps}")
        config.steps = args.steps
    output_dir = train(config, resume=args.resume, device=args.device, progress=not args.no_progress, until_step=args.until)
    print(f"training state in {output_dir}")
    return 0
