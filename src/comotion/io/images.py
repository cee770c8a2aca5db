"""Reading still images into the pipeline's frame layout: ``(3, H, W)`` uint8 RGB tensors.

Whatever the file holds (greyscale, palette, RGBA, 16-bit, CMYK, EXIF-rotated JPEG), the result
is 8-bit RGB.  Alpha is dropped (not composited), 16-bit samples keep their top 8 bits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from comotion.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def is_image_path(path: str | Path) -> bool:
    """True for file names with a supported still-image suffix (any case)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def array_to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """Any ``(H, W)``, ``(H, W, 1|2|3|4)`` integer or float image -> ``(H, W, 3)`` uint8 RGB.

    Integer images wider than 8 bits are scaled by their dtype's range (16-bit: keep the top 8
    bits); float images are taken as intensities in [0, 1].  A second or fourth channel is alpha
    and is dropped.
    """
    if array.ndim == 3 and array.shape[2] in (2, 4):
        array = array[..., :-1]
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"unsupported image array shape {array.shape}")
    if array.dtype == np.uint8:
        out = array
    elif array.dtype == np.bool_:
        out = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.integer):
        # PIL reports 16-bit greyscale PNGs as int32 ('I' mode) holding 0..65535.
        top = 65535 if array.max(initial=0) <= 65535 else np.iinfo(array.dtype).max
        out = (array.astype(np.float64) * (255.0 / top)).round().clip(0, 255).astype(np.uint8)
    else:
        out = (np.nan_to_num(array.astype(np.float64)) * 255.0).round().clip(0, 255).astype(np.uint8)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    return np.ascontiguousarray(out)


def hwc_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` uint8 tensor (a copy, contiguous)."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


def read_image(path: str | Path) -> torch.Tensor:
    """Load an image file as a ``(3, H, W)`` uint8 RGB tensor, EXIF orientation applied.

    Raises:
        InputError: the file is missing, empty or not a decodable image (message names the file).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: image file is empty")
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
                image = image.convert("RGBA" if "transparency" in image.info or image.mode == "PA" else "RGB")
            array = np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{path}: cannot decode image ({err.__class__.__name__}: {err})".splitlines()[0]) from None
    if array.size == 0:
        raise InputError(f"{path}: image has no pixels")
    try:
        return hwc_to_tensor(array_to_rgb_uint8(array))
    except ValueError as err:
        raise InputError(f"{path}: {err}") from None
