"""Synthetic multi-person video with ground truth (``comotion synth``).

Procedural motion (:mod:`~comotion.synth.motion`), random scenes (:mod:`~comotion.synth.scene`),
a software z-buffer rasterizer (:mod:`~comotion.synth.raster`), textures and camera effects
(:mod:`~comotion.synth.appearance`), clip generation (:mod:`~comotion.synth.generator`) and the
on-disk format with its PoseTrack21 export (:mod:`~comotion.synth.clip`).
"""

from comotion.synth.clip import (
    Clip,
    ClipGroundTruth,
    annotated_people,
    export_posetrack,
    load_clip,
    write_clip,
)
from comotion.synth.generator import ClipGenerator, GeneratedClip, SynthConfig
from comotion.synth.scene import SceneConfig

__all__ = [
    "Clip",
    "ClipGenerator",
    "ClipGroundTruth",
    "GeneratedClip",
    "SceneConfig",
    "SynthConfig",
    "annotated_people",
    "export_posetrack",
    "load_clip",
    "write_clip",
]
