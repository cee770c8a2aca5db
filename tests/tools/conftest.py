"""The scripts in tools/ are not a package: tests load them from their files."""

import importlib.util
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def load_tool(name: str):
    """The module of ``tools/<name>.py``."""
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_tiny_weights(path: Path) -> Path:
    """A tiny model with seed-0 random weights and the low-resolution anny body, saved at ``path``."""
    import torch

    from comotion.body import load_body_model
    from comotion.model import CoMotion, get_preset

    torch.manual_seed(0)
    return CoMotion(get_preset("tiny"), load_body_model("anny-lowres")).save(path)


def run_tool(tool, argv: list[str]) -> tuple[int, str]:
    """``tool.main(argv)``'s exit code and what it printed."""
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = tool.main(argv)
    return code, printed.getvalue()
