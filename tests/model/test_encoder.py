"""Encoder pieces that are not covered by the reference fixtures as such."""

import pytest
import torch
from timm.layers.grn import GlobalResponseNorm as TimmGlobalResponseNorm

from comotion.model.encoder import GlobalResponseNorm, RotaryIntrinsics


@pytest.mark.parametrize("channels_last", [True, False])
def test_fused_grn_equals_timm(channels_last):
    generator = torch.Generator().manual_seed(0)
    timm_grn = TimmGlobalResponseNorm(16, channels_last=channels_last)
    with torch.no_grad():
        timm_grn.weight.normal_(generator=generator)
        timm_grn.bias.normal_(generator=generator)
    ours = GlobalResponseNorm.replacing(timm_grn)
    ours.load_state_dict(timm_grn.state_dict())
    x = torch.randn(2, 5, 7, 16, generator=generator)
    if not channels_last:
        x = x.permute(0, 3, 1, 2)
    torch.testing.assert_close(ours(x), timm_grn(x), rtol=1e-6, atol=1e-6)


def _pair_norms(features: torch.Tensor) -> torch.Tensor:
    return features[:, :8] ** 2 + features[:, 8:16] ** 2


def test_rotary_conditioning_is_a_rotation_of_channel_pairs():
    rotary = RotaryIntrinsics(rot_embed_dim=2)  # rotates 16 channels as 8 pairs (c, c + 8)
    features = torch.randn(1, 20, 3, 4, generator=torch.Generator().manual_seed(1))
    K = torch.tensor([[[300.0, 0.0, 16.0], [0.0, 310.0, 12.0]]])
    out = rotary(features, K, pooling=8)
    torch.testing.assert_close(_pair_norms(out), _pair_norms(features))
    assert torch.equal(out[:, 16:], features[:, 16:])
    # Angles follow the intrinsics: a different principal point changes the camera-ray half only.
    shifted = K.clone()
    shifted[0, 0, 2] += 50
    angles, angles_shifted = rotary.angles(K, 3, 4, 8), rotary.angles(shifted, 3, 4, 8)
    assert torch.equal(angles[:, :4], angles_shifted[:, :4])
    assert not torch.equal(angles[:, 4:6], angles_shifted[:, 4:6])
