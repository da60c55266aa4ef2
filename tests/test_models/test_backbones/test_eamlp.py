"""EAMLP backbone: layout of the released EAMLP-7, output types, other input sizes, and that
a tiny model trains."""
import pytest
import torch
import torch.nn.functional as F

from mmattn.models.backbones.eamlp import EAMLP, EATokenLayer, eamlp_7, resize_pos_embed
from mmattn.models.layers.external_attention import MultiHeadExternalAttention

TINY = dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2.)


def official_eamlp7_param_count(num_classes=1000):
    """Parameters of the official T2t_vit_7 EAMLP, counted from its module definitions."""

    def linear(i, o, bias=True):
        return i * o + (o if bias else 0)

    def ln(c):
        return 2 * c

    def token_layer(dim, in_dim, k=128):
        return (ln(dim) + linear(dim, in_dim) + linear(in_dim, k, False) + linear(k, in_dim) +
                linear(in_dim, in_dim) + ln(in_dim) + 2 * linear(in_dim, in_dim))

    t2t = token_layer(3 * 49, 64) + token_layer(64 * 9, 64) + linear(64 * 9, 256)
    block = (ln(256) + linear(256, 1024) + linear(64, 64) + linear(64, 64) +
             linear(1024, 256) + ln(256) + linear(256, 512) + linear(512, 256))
    return t2t + 256 + 7 * block + ln(256) + linear(256, num_classes)


def test_eamlp7_layout_and_param_count():
    model = eamlp_7(img_size=384)
    assert model.embed_dims == 256 and len(model.layers) == 7
    assert model.patch_resolution == (24, 24) and model.pos_embed.shape == (1, 577, 256)
    attn = model.layers[0].attn
    assert isinstance(attn, MultiHeadExternalAttention)
    assert (attn.num_heads, attn.head_dims, attn.memory_size) == (16, 64, 64)
    assert model.layers[0].mlp.fc1.out_features == 512
    assert model.tokens_to_token.attention1.mk.out_features == 128
    n_backbone = sum(p.numel() for p in model.parameters())
    # + the 1000-way Linear on the cls token = the official model
    assert n_backbone + 256 * 1000 + 1000 == official_eamlp7_param_count()
    assert not any(n == 'pos_embed' for n, _ in model.named_parameters())


@pytest.mark.parametrize('out_type,shape', [('cls_token', (2, 32)), ('avg_featmap', (2, 32)),
                                            ('featmap', (2, 32, 3, 2)),
                                            ('raw', (2, 7, 32))])
def test_out_types(out_type, shape):
    model = EAMLP(arch=TINY, img_size=48, token_dims=16, out_type=out_type).eval()
    # non-square input: 48 x 32 px -> 3 x 2 tokens
    (out, ) = model(torch.randn(2, 3, 48, 32))
    assert out.shape == shape


def test_default_arch_small_image_and_out_indices():
    model = EAMLP(img_size=32, out_indices=(0, -1)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 32, 32))
    assert isinstance(outs, tuple) and len(outs) == 2
    assert all(o.shape == (1, 256) for o in outs)


def test_other_input_size_resizes_position_table():
    model = EAMLP(arch=TINY, img_size=32, token_dims=16, out_type='featmap').eval()
    assert model.patch_resolution == (2, 2)
    (out, ) = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 32, 4, 4)
    table = resize_pos_embed(model.pos_embed, (2, 2), (4, 4))
    assert table.shape == (1, 17, 32)
    torch.testing.assert_close(table[:, :1], model.pos_embed[:, :1])
    # a checkpoint trained at another size loads (its table is resized)
    big = EAMLP(arch=TINY, img_size=64, token_dims=16)
    model.load_state_dict(big.state_dict())
    torch.testing.assert_close(model.pos_embed, resize_pos_embed(big.pos_embed, (4, 4), (2, 2)))


def test_token_layer_equations():
    torch.manual_seed(0)
    layer = EATokenLayer(12, embed_dims=8, memory_size=5, attn_drop=0., proj_drop=0.).eval()
    x = torch.randn(2, 9, 12)
    q = layer.q(layer.norm1(x))
    a = torch.softmax(q @ layer.mk.weight.t(), dim=1)  # over the 9 tokens
    a = a / (1e-9 + a.sum(dim=2, keepdim=True))  # over the 5 slots
    y = q + layer.proj(a @ layer.mv.weight.t() + layer.mv.bias)
    y = y + layer.mlp(layer.norm2(y))
    torch.testing.assert_close(layer(x), y)


def test_tiny_eamlp_loss_falls():
    # Pooled patch tokens: the cls token reads the patches only through the softmax-over-N
    # partition sums, a signal that is second order at the std-0.02 init and too slow for
    # a few steps (the official model still trains it over 300 epochs).
    torch.manual_seed(0)
    model = EAMLP(arch=TINY, img_size=32, token_dims=16, t2t_drop_rate=0.,
                  out_type='avg_featmap')
    head = torch.nn.Linear(32, 4)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    x = torch.randn(8, 3, 32, 32)
    y = torch.arange(8) % 4
    losses = []
    for _ in range(6):
        loss = F.cross_entropy(head(model(x)[-1]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.6 * losses[0], losses


def test_cls_token_depends_on_the_image():
    torch.manual_seed(0)
    model = EAMLP(arch=TINY, img_size=32, token_dims=16).eval()
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    model(x)[-1][0].sum().backward()
    assert x.grad[0].abs().sum() > 0 and x.grad[1].abs().sum() == 0


def test_registry_and_errors():
    from mmattn.registry import MODELS
    model = MODELS.build(dict(type='EAMLP', arch=TINY, img_size=32, token_dims=16))
    assert isinstance(model, EAMLP)
    with pytest.raises(ValueError, match="arch='3'"):
        EAMLP(arch='3')
    with pytest.raises(ValueError, match='out_type'):
        EAMLP(arch=TINY, img_size=32, out_type='cls')
    with pytest.raises(ValueError, match='with_cls_token'):
        EAMLP(arch=TINY, img_size=32, with_cls_token=False)
    with pytest.raises(ValueError, match='out_indices entry 5'):
        EAMLP(arch=TINY, img_size=32, out_indices=5)
    model = EAMLP(arch=TINY, img_size=32, token_dims=16, with_cls_token=False,
                  out_type='avg_featmap')
    assert model(torch.randn(1, 3, 32, 32))[0].shape == (1, 32)
