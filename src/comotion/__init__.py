"""comotion: online detection and tracking of detailed 3D human poses in monocular video.

Public API (imported on first use, so ``import comotion`` stays cheap)::

    from comotion import CoMotion, load_body_model
    model = CoMotion.from_pretrained("default")
    tracker = model.tracker()
    for result in tracker.run(frames): ...
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "CoMotion": "comotion.model.comotion",
    "Tracker": "comotion.tracking.tracker",
    "TrackerConfig": "comotion.tracking.config",
    "BodyModel": "comotion.body.model",
    "BodyOutput": "comotion.body.model",
    "load_body_model": "comotion.body.loaders",
    "ComotionError": "comotion.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'comotion' has no attribute {name!r}")
