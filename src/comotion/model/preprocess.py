"""Image preparation (spec section 1): any image and K -> the square network input and its K'.

The image is zero-padded to a centred ``S x S`` square (``S = max(H, W)``), resized to the
network resolution with antialiased bilinear interpolation, and ImageNet-normalised; the
intrinsics follow the same crop and scale.  All of it reproduces the reference bit-exactly.
Outputs in network pixels map back to the original image with :func:`crop_to_image_pixels`
(the pipeline itself projects 3-D points with the original K instead, as the reference does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from comotion.errors import InputError
from comotion.geometry.camera import default_intrinsics

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class CropTransform:
    """Where the network's square input sits in the original image.

    ``original = network / scale + offset`` per axis (offset = (o_x, o_y) <= 0: padding).
    """

    offset_x: int
    offset_y: int
    scale: float


def crop_transform(height: int, width: int, resolution: int) -> CropTransform:
    """The centred square box of side ``max(H, W)`` and its scale to ``resolution`` pixels.

    Offsets are truncated toward zero (reference quirk Q16: an odd padding puts the extra
    row/column at the bottom/right).
    """
    side = max(height, width)
    return CropTransform(int(width / 2 - side / 2), int(height / 2 - side / 2), resolution / side)


def crop_intrinsics(K: torch.Tensor, height: int, width: int, resolution: int) -> torch.Tensor:
    """``K (..., 2, 3)`` of the original image -> K' of the network input (skew entries unscaled, Q15)."""
    box = crop_transform(height, width, resolution)
    K_crop = K.clone()
    K_crop[..., 0, 0] = K[..., 0, 0] * box.scale
    K_crop[..., 1, 1] = K[..., 1, 1] * box.scale
    K_crop[..., 0, 2] = (K[..., 0, 2] - box.offset_x) * box.scale
    K_crop[..., 1, 2] = (K[..., 1, 2] - box.offset_y) * box.scale
    return K_crop


def crop_to_image_pixels(uv: torch.Tensor, image_size: tuple[int, int], resolution: int) -> torch.Tensor:
    """Network-input pixels ``(..., 2)`` -> pixels of the original ``(H, W)`` image."""
    box = crop_transform(image_size[0], image_size[1], resolution)
    offset = uv.new_tensor([box.offset_x, box.offset_y])
    return uv / box.scale + offset


def image_to_crop_pixels(uv: torch.Tensor, image_size: tuple[int, int], resolution: int) -> torch.Tensor:
    """Pixels ``(..., 2)`` of the original ``(H, W)`` image -> network-input pixels."""
    box = crop_transform(image_size[0], image_size[1], resolution)
    offset = uv.new_tensor([box.offset_x, box.offset_y])
    return (uv - offset) * box.scale


def as_image_tensor(image) -> torch.Tensor:
    """Validate an RGB image: ``(3, H, W)`` tensor, or ``(H, W, 3)`` numpy array, uint8 or float in [0, 1]."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"image array must be (H, W, 3) RGB, got shape {image.shape}")
        image = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    if not isinstance(image, torch.Tensor):
        raise InputError(f"image must be a (3, H, W) tensor or (H, W, 3) array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] < 1 or image.shape[2] < 1:
        raise InputError(f"image must have shape (3, H, W), got {tuple(image.shape)}")
    if image.dtype != torch.uint8 and not image.dtype.is_floating_point:
        raise InputError(f"image dtype must be uint8 (0-255) or float (0-1), got {image.dtype}")
    return image


def prepare_image(
    image: torch.Tensor, K: torch.Tensor | None = None, resolution: int = 512
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad, resize and normalise one image; crop its intrinsics.

    Args:
        image: ``(3, H, W)`` RGB, uint8 in [0, 255] or float in [0, 1].
        K: ``(2, 3)`` intrinsics in original pixels, or ``None`` for the default
            (f = 2 max(H, W), centred principal point).
        resolution: side of the square network input.

    Returns:
        ``(network_image (1, 3, R, R) normalised float32, K_crop (1, 2, 3), K (2, 3))``.
    """
    image = as_image_tensor(image)
    height, width = image.shape[1:]
    if K is None:
        K = default_intrinsics(height, width).to(image.device)
    K = torch.as_tensor(K, dtype=torch.float32, device=image.device)
    if K.shape != (2, 3):
        raise InputError(f"intrinsics K must have shape (2, 3), got {tuple(K.shape)}")
    pixels = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()

    side = max(height, width)
    box = crop_transform(height, width, resolution)
    canvas = pixels.new_zeros(1, 3, side, side)
    canvas[0, :, -box.offset_y : -box.offset_y + height, -box.offset_x : -box.offset_x + width] = pixels
    if side != resolution:
        canvas = F.interpolate(
            canvas, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True
        )
    mean = torch.tensor(IMAGENET_MEAN, device=canvas.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=canvas.device)[:, None, None]
    normalised = (canvas - mean) / std
    return normalised, crop_intrinsics(K, height, width, resolution)[None], K
