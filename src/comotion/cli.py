"""The ``comotion`` command line: one program, one sub-command per job.

Each sub-command lives in ``comotion.commands.<name>`` and exposes ``add_arguments(parser)`` and
``run(args) -> int``.  Heavy imports (torch, the network) happen inside ``run`` so that
``comotion --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from comotion.errors import ComotionError

# name -> (module, one-line help).  Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("comotion.commands.demo", "generate a synthetic clip, track it and score the result"),
    "track": ("comotion.commands.track", "track every person in a video, image folder or stream"),
    "detect": ("comotion.commands.detect", "detect people in a single image (no tracking)"),
    "synth": ("comotion.commands.synth", "render synthetic multi-person clips with ground truth"),
    "train": ("comotion.commands.train", "train a model (stage 1, 2 or 3) from a config file"),
    "eval": ("comotion.commands.eval", "evaluate tracking (MOT/PoseTrack21) or pose accuracy"),
    "bench": ("comotion.commands.bench", "measure speed and memory of the network and tracker"),
}


def _available_commands() -> dict[str, object]:
    modules = {}
    for name, (module_name, _) in COMMANDS.items():
        try:
            modules[name] = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="comotion",
        description="CoMotion: online detection and tracking of 3D human poses in video.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _available_commands().items():
        help_text = COMMANDS[name][1]
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except ComotionError as err:
        print(f"comotion {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"comotion {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
