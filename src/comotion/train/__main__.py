"""``python -m comotion.train CONFIG [--resume] [--device DEVICE]``: the entry point for ``torchrun``."""

import sys

from comotion.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
