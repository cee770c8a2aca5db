"""Procedural textures: backgrounds (ground and far wall), clothing patterns, image effects.

Textures are functions of 2D/3D coordinates evaluated per pixel, so a moving camera sees a
consistent world and clothing patterns stick to the body (they are evaluated on the rest-pose
position of each surface point).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

PATTERNS = ("plain", "stripes", "checker", "noise", "gradient")


@dataclass
class Pattern:
    """A two-colour pattern ``mix(colour_a, colour_b, f(coords))``.

    Attributes:
        kind: one of :data:`PATTERNS`.
        colour_a, colour_b: RGB in 0..1.
        scale: feature size in the coordinates' units (metres).
        angle: orientation of stripes/gradients in the plane of the first two coordinates.
        noise_grid: ``(G, G)`` random lattice for the ``noise`` kind.
    """

    kind: str
    colour_a: np.ndarray
    colour_b: np.ndarray
    scale: float
    angle: float
    noise_grid: np.ndarray


def random_colour(rng: np.random.Generator, saturation=(0.2, 0.9), value=(0.15, 0.95)) -> np.ndarray:
    """An RGB colour (0..1) from a random hue, saturation and value."""
    import colorsys

    return np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(*saturation), rng.uniform(*value)))


def random_pattern(rng: np.random.Generator, scale=(0.05, 0.5), kinds=PATTERNS) -> Pattern:
    """A pattern of a random kind; the second colour is often a shade of the first."""
    colour_a = random_colour(rng)
    colour_b = np.clip(colour_a * rng.uniform(0.4, 1.6) + rng.normal(0, 0.15, 3), 0, 1) if rng.random() < 0.6 else random_colour(rng)
    return Pattern(
        kind=str(rng.choice(kinds)),
        colour_a=colour_a,
        colour_b=colour_b,
        scale=float(rng.uniform(*scale)),
        angle=float(rng.uniform(0, np.pi)),
        noise_grid=rng.random((16, 16)),
    )


def _value_noise(grids: torch.Tensor, index: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Smooth periodic value noise in 0..1: lattice ``grids[index] (G, G)`` interpolated
    bilinearly with smoothstep at ``x, y (...)`` (lattice units)."""
    size = grids.shape[-1]
    flat = grids.reshape(-1)
    base = index * (size * size)
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    i0, j0 = x0.long() % size, y0.long() % size
    i1, j1 = (i0 + 1) % size, (j0 + 1) % size
    top = flat[base + j0 * size + i0] * (1 - fx) + flat[base + j0 * size + i1] * fx
    bottom = flat[base + j1 * size + i0] * (1 - fx) + flat[base + j1 * size + i1] * fx
    return top * (1 - fy) + bottom * fy


@dataclass
class PatternTable:
    """Several patterns as arrays, for evaluating a different pattern at every point at once.

    Attributes:
        kind: ``(M,)`` int64 index into :data:`PATTERNS`.
        colour_a, colour_b: ``(M, 3)``.
        scale, angle: ``(M,)``.
        noise_grid: ``(M, G, G)``.
    """

    kind: torch.Tensor
    colour_a: torch.Tensor
    colour_b: torch.Tensor
    scale: torch.Tensor
    angle: torch.Tensor
    noise_grid: torch.Tensor

    @classmethod
    def from_patterns(cls, patterns: list[Pattern], dtype: torch.dtype = torch.float32) -> PatternTable:
        def stack(name: str) -> torch.Tensor:
            return torch.as_tensor(np.stack([np.asarray(getattr(p, name), np.float64) for p in patterns]), dtype=dtype)

        return cls(
            kind=torch.tensor([PATTERNS.index(p.kind) for p in patterns], dtype=torch.long),
            colour_a=stack("colour_a"),
            colour_b=stack("colour_b"),
            scale=stack("scale"),
            angle=stack("angle"),
            noise_grid=stack("noise_grid"),
        )

    def evaluate(self, index: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Colours ``(..., 3)`` in 0..1 of patterns ``index (...)`` at coordinates ``u, v (...)``."""
        ca, sa = torch.cos(self.angle)[index], torch.sin(self.angle)[index]
        scale = self.scale[index]
        s = (u * ca + v * sa) / scale
        t = (-u * sa + v * ca) / scale
        kind = self.kind[index]
        mix = torch.zeros_like(u)
        # Each kind is computed only where it is used (noise costs ten times the others).
        for number, name in enumerate(PATTERNS[1:], start=1):
            where = kind == number
            if not bool(where.any()):
                continue
            ss, tt = s[where], t[where]
            if name == "stripes":
                value = (torch.sin(ss * np.pi) > 0).to(u.dtype)
            elif name == "checker":
                value = ((torch.floor(ss) + torch.floor(tt)) % 2).to(u.dtype)
            elif name == "noise":
                grids, which = self.noise_grid, index[where]
                value = 0.65 * _value_noise(grids, which, ss, tt) + 0.35 * _value_noise(grids, which, 3.1 * ss + 5, 3.1 * tt + 7)
            else:  # gradient
                value = 0.5 + 0.5 * torch.sin(ss * 0.5)
            mix[where] = value
        mix = mix[..., None]
        a, b = self.colour_a[index], self.colour_b[index]
        return a + (b - a) * mix


@dataclass
class Background:
    """A ground plane (world y = 0) and a vertical wall at world ``z = -wall_distance``.

    Attributes:
        ground, wall: their patterns (ground coordinates x, z; wall coordinates x, y).
        wall_distance: metres from the camera's ground point to the wall.
        haze: RGB the ground and wall fade to with distance.
        haze_distance: metres over which the fade reaches ~63 %.
    """

    ground: Pattern
    wall: Pattern
    wall_distance: float
    haze: np.ndarray
    haze_distance: float


def random_background(rng: np.random.Generator) -> Background:
    """Random ground and wall patterns, wall distance and haze."""
    return Background(
        ground=random_pattern(rng, scale=(0.3, 2.0)),
        wall=random_pattern(rng, scale=(0.3, 4.0)),
        wall_distance=float(rng.uniform(15.0, 40.0)),
        haze=random_colour(rng, saturation=(0.0, 0.3), value=(0.5, 1.0)),
        haze_distance=float(rng.uniform(30.0, 120.0)),
    )


def render_background(
    background: Background, K: torch.Tensor, camera_rotation: torch.Tensor, camera_position: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """The background image ``(H, W, 3)`` in 0..1 seen by a camera.

    Args:
        K: ``(2, 3)`` intrinsics.
        camera_rotation: ``(3, 3)`` world-to-camera rotation ``R`` (``x_cam = R x_world + t``).
        camera_position: ``(3,)`` camera centre in the world (y up, ground at y = 0).
    """
    rows = torch.arange(height, dtype=torch.float64) + 0.5
    cols = torch.arange(width, dtype=torch.float64) + 0.5
    v, u = torch.meshgrid(rows, cols, indexing="ij")
    K = K.double()
    y_n = (v - K[1, 2]) / K[1, 1]
    x_n = (u - K[0, 2] - K[0, 1] * y_n) / K[0, 0]
    rays_cam = torch.stack([x_n, y_n, torch.ones_like(x_n)], dim=-1)
    rays = rays_cam @ camera_rotation.double()  # R^T d for row vectors
    origin = camera_position.double()
    # Distance along the ray to the ground (y = 0) and to the wall (z = -wall_distance).
    t_ground = torch.where(rays[..., 1] < -1e-9, -origin[1] / rays[..., 1], torch.full_like(x_n, float("inf")))
    t_wall = torch.where(rays[..., 2] < -1e-9, (-background.wall_distance - origin[2]) / rays[..., 2], torch.full_like(x_n, float("inf")))
    hits_ground = t_ground < t_wall
    distance = torch.minimum(t_ground, t_wall)
    distance = torch.where(torch.isfinite(distance), distance, torch.full_like(distance, 1e4))
    point = origin + rays * distance[..., None]
    table = PatternTable.from_patterns([background.ground, background.wall])
    u = point[..., 0].float()
    v = torch.where(hits_ground, point[..., 2], point[..., 1]).float()
    colour = table.evaluate((~hits_ground).long(), u, v)
    fade = (1.0 - torch.exp(-distance * rays.norm(dim=-1) / background.haze_distance)).float()
    haze = torch.as_tensor(background.haze, dtype=colour.dtype)
    return colour + (haze - colour) * fade[..., None]


@dataclass
class ImageEffects:
    """Camera imperfections applied to the rendered image in 0..1.

    Attributes:
        exposure: overall gain; ``exposure_drift`` is the amplitude of a slow gain change.
        gamma: applied after the gain.
        blur_sigma: Gaussian blur sigma in pixels (0 = none).
        noise_sigma: additive Gaussian noise, in 0..1 units.
    """

    exposure: float
    exposure_drift: float
    exposure_period: float
    gamma: float
    blur_sigma: float
    noise_sigma: float


def random_effects(rng: np.random.Generator) -> ImageEffects:
    """Random exposure (drifting in 40 % of clips), gamma, blur (70 %) and noise."""
    return ImageEffects(
        exposure=float(np.exp(rng.normal(0.0, 0.25))),
        exposure_drift=float(rng.uniform(0.0, 0.2)) if rng.random() < 0.4 else 0.0,
        exposure_period=float(rng.uniform(40.0, 200.0)),
        gamma=float(rng.uniform(0.8, 1.25)),
        blur_sigma=float(rng.uniform(0.0, 1.2)) if rng.random() < 0.7 else 0.0,
        noise_sigma=float(rng.uniform(0.0, 0.04)),
    )


def apply_effects(image: np.ndarray, effects: ImageEffects, frame_index: int, rng: np.random.Generator) -> np.ndarray:
    """``image (H, W, 3)`` float 0..1 -> uint8 RGB with gain, gamma, blur and noise."""
    import cv2

    gain = effects.exposure * (1.0 + effects.exposure_drift * np.sin(2 * np.pi * frame_index / effects.exposure_period))
    out = np.clip(image * gain, 0.0, 1.0) ** effects.gamma
    if effects.blur_sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), effects.blur_sigma)
    if effects.noise_sigma > 0:
        out = out + np.float32(effects.noise_sigma) * rng.standard_normal(out.shape, dtype=np.float32)
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
