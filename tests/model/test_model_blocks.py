"""Building blocks: layouts the official checkpoints rely on, and the fast inference kernel."""

import math

import torch
from torch import nn

from comotion.model.blocks import Linear, PosEmbed, ResMLP, TransformerLayer, use_onednn_linear


def test_pos_embed_layout():
    embed = PosEmbed(num_bands=3)
    out = embed(torch.tensor([[0.5, -0.25]]))
    expected = [0.5, -0.25] + [math.sin(0.5 * 2**k) for k in range(3)] + [math.sin(-0.25 * 2**k) for k in range(3)]
    torch.testing.assert_close(out[0], torch.tensor(expected))
    assert embed.out_dim == 8 and "freq_bands" in embed.state_dict()


def test_res_mlp_is_residual_only_when_widths_match():
    torch.manual_seed(0)
    same, wider = ResMLP(6), ResMLP(6, out_dim=9, pre_ln=False)
    x = torch.randn(4, 6)
    inner = same.l2(torch.nn.functional.gelu(same.ln1(same.l1(same.ln0(x)))))
    torch.testing.assert_close(same(x), x + inner)
    assert wider(x).shape == (4, 9) and wider.ln0 is None
    assert set(wider.state_dict()) == {"l1.weight", "l1.bias", "ln1.weight", "ln1.bias", "l2.weight", "l2.bias"}


def test_transformer_layer_has_no_positions():
    torch.manual_seed(0)
    layer = TransformerLayer(dim=8, num_heads=2, head_dim=4).eval()
    x = torch.randn(3, 5, 8)
    perm = torch.tensor([4, 2, 0, 1, 3])
    with torch.no_grad():
        torch.testing.assert_close(layer(x[:, perm]), layer(x)[:, perm])
    assert layer.self_attn.q_proj.weight.shape == (8, 8) and layer.mlp.gate_proj.weight.shape == (16, 8)


def test_fast_linear_matches_and_falls_back_for_training():
    torch.manual_seed(0)
    reference = nn.Linear(32, 48)
    fast = use_onednn_linear(nn.Sequential(nn.Linear(32, 48)))[0]
    fast.load_state_dict(reference.state_dict())
    assert type(fast) is Linear and list(fast.state_dict()) == ["weight", "bias"]
    x = torch.randn(2, 7, 32)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), reference(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fast(x.transpose(0, 1)), reference(x.transpose(0, 1)), rtol=1e-5, atol=1e-5)
    with torch.enable_grad():  # with autograd the default kernel runs and gradients flow
        fast(x).sum().backward()
    assert fast.weight.grad is not None


def test_cross_attention_logits_are_the_attention_forward_applies():
    import torch.nn.functional as F

    from comotion.model.update import CrossAttentionBlock

    torch.manual_seed(0)
    block = CrossAttentionBlock(hidden_dim=32, token_dim=16, num_heads=4, llama_heads=4, llama_head_dim=8)
    tokens = torch.randn(1, 3, 2, 32)
    keys, values = torch.randn(1, 4, 10, 4), torch.randn(1, 4, 10, 4)
    logits = block.attention_logits(tokens, keys)
    assert logits.shape == (1, 4, 6, 10)
    query = block._query(tokens)
    assert torch.allclose(F.scaled_dot_product_attention(query, keys, values), logits.softmax(-1) @ values, atol=1e-6)
