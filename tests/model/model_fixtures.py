"""Helpers for the network tests: the parity folder's small configuration and inputs.

Nothing here assumes the shipped fixture case: sizes, resolutions and case counts all come from
the parity folder (``COMOTION_PARITY_DIR`` selects another folder in the same format).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from comotion.model.config import DetectionConfig, EncoderConfig, ModelConfig, UpdateConfig
from comotion.model.preprocess import prepare_image


def parity_model_config(parity_dir: Path) -> ModelConfig:
    """The small configuration described by the parity folder's ``config.json``."""
    info = json.loads((parity_dir / "config.json").read_text())
    backbone, det, ref = info["backbone"], info["detect_config"], info["refine_config"]
    variant = re.match(r"convnextv2_(\w+)", backbone["timm_model"]).group(1)
    return ModelConfig(
        encoder=EncoderConfig(
            variant=variant,
            output_dim=backbone["output_dim"],
            rot_embed_dim=det["rot_embed_dim"],
            dropout=backbone["dropout"],
        ),
        detection=DetectionConfig(pose_embed_dim=det["pose_embed_dim"], hidden_dim=det["hidden_dim"]),
        update=UpdateConfig(
            num_tokens=ref["num_tokens"],
            num_heads=ref["num_heads"],
            token_dim=ref["token_dim"],
            hidden_dim=ref["hidden_dim"],
            pose_embed_dim=ref["pose_embed_dim"],
            normalizing_factor=ref["normalizing_factor"],
        ),
        input_resolution=info["internal_resolution"][0],
    )


def read_png(path: Path) -> torch.Tensor:
    """``(3, H, W)`` uint8 RGB tensor of a PNG (as the parity README prescribes)."""
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).contiguous()


def detect_case_input(
    parity_dir: Path, case: dict, resolution: int
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """Network input ``(1, 3, R, R)``, ``K_crop (1, 2, 3)`` and original ``(H, W)`` of a detect.pt case.

    A case stores the network input itself (``input_image``; its original size is then unknown and
    reported as the network size, which only the non-reference similarity mode would use) or
    names the PNG it was prepared from (``input_source``).
    """
    if "input_image" in case:
        return case["input_image"], case["cropped_K"], (resolution, resolution)
    match = re.search(r"(\S+\.png)", case["input_source"])
    assert match, f"cannot find the input PNG in {case['input_source']!r}"
    png = read_png(parity_dir / match.group(1))
    image, K_crop, _ = prepare_image(png, case["K_raw"], resolution)
    torch.testing.assert_close(K_crop, case["cropped_K"], rtol=1e-6, atol=0)
    return image, K_crop, (png.shape[1], png.shape[2])
