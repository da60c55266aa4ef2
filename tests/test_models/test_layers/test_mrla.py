"""MRLA-light / MRLA-base operators (mmattn/models/layers/mrla.py)."""
import pytest
import torch
import torch.nn.functional as F

from mmattn.models.layers.mrla import MRLABase, MRLALight, MRLAProjection, eca_kernel_size


def test_eca_kernel_size_matches_official_table():
    # ECA/MRLA: t = int(|(log2 C + 1) / 2|), made odd.
    assert [eca_kernel_size(c) for c in (64, 128, 256, 512, 1024, 2048)] == [3, 5, 5, 5, 5, 7]
    with pytest.raises(ValueError, match='channels=0'):
        eca_kernel_size(0)


def test_official_parameter_names_and_shapes():
    m = MRLALight(2048)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == {'mrla.Wq.weight': (1, 1, 7), 'mrla.Wk.weight': (1, 1, 7),
                      'mrla.Wv.weight': (2048, 1, 3, 3), 'lambda_t': (2048, 1, 1)}
    assert m.num_heads == 64
    assert MRLABase(256).num_heads == 16
    assert 'lambda_t' not in MRLABase(256).state_dict()
    assert 'lambda_t' not in MRLALight(256, use_lambda=False).state_dict()


def test_bad_arguments_name_field_and_value():
    with pytest.raises(ValueError, match=r'head_channels=48 .*channels=256'):
        MRLALight(256, head_channels=48)
    with pytest.raises(ValueError, match=r"lambda_init='uniform'"):
        MRLALight(256, lambda_init='uniform')
    with pytest.raises(ValueError, match='kernel_size=4'):
        MRLABase(256, kernel_size=4)
    with pytest.raises(ValueError, match='identity'):
        MRLALight(64)(torch.randn(1, 64, 5, 5))


def test_lambda_init_options():
    torch.manual_seed(0)
    assert MRLALight(64).lambda_t.std() > 0.5  # randn, official
    assert torch.count_nonzero(MRLALight(64, lambda_init='zeros').lambda_t) == 0
    assert torch.all(MRLALight(64, lambda_init='ones').lambda_t == 1)


def _official_light(m, x, identity):
    """The official formula written out: heads of d channels, scalar sigmoid gate per head."""
    b, c, h, w = x.shape
    g = m.num_heads
    y = F.adaptive_avg_pool2d(x, 1).squeeze(-1).transpose(-1, -2)  # (b, 1, c)
    q = m.mrla.Wq(y).view(b, g, 1, c // g)
    k = m.mrla.Wk(y).view(b, g, 1, c // g)
    v = m.mrla.Wv(x).view(b, g, c // g, h, w)
    attn = torch.einsum('...id,...jd->...ij', q, k) / (c / g) ** 0.5
    out = (v * torch.sigmoid(attn.view(b, g, 1, 1, 1))).view(b, c, h, w)
    return out + m.lambda_t.expand_as(identity) * identity


@pytest.mark.parametrize('hw', [(7, 9), (1, 1), (13, 4)])
def test_light_matches_official_formula_any_size(hw):
    torch.manual_seed(0)
    m = MRLALight(64, record_attention=True)
    x, ident = torch.randn(2, 64, *hw), torch.randn(2, 64, *hw)
    out = m(x, ident)
    assert out.shape == x.shape
    torch.testing.assert_close(out, _official_light(m, x, ident))
    assert m.last_attention.shape == (2, 2)
    assert torch.all((m.last_attention > 0) & (m.last_attention < 1))


def test_light_gradients_reach_lambda_and_1d_convs():
    torch.manual_seed(0)
    m = MRLALight(64)
    x = torch.randn(2, 64, 6, 5, requires_grad=True)
    ident = torch.randn(2, 64, 6, 5, requires_grad=True)
    m(x, ident).square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0 and ident.grad.abs().sum() > 0


def _naive_base_chain(blocks, xs):
    """The official MRLA-base threading: concatenate K and V at every block."""
    K = V = None
    outs = []
    for m, x in zip(blocks, xs):
        b, c, h, w = x.shape
        g, d = m.num_heads, m.mrla.head_channels
        y = F.adaptive_avg_pool2d(x, 1).squeeze(-1).transpose(-1, -2)
        q, k, v = m.mrla.Wq(y), m.mrla.Wk(y), m.mrla.Wv(x)
        K = k if K is None else torch.cat((K, k), dim=1)  # (b, t, c)
        V = v.unsqueeze(1) if V is None else torch.cat((V, v.unsqueeze(1)), dim=1)
        t = K.shape[1]
        Qh = q.view(b, g, 1, d)
        Kh = K.view(b, t, g, d).permute(0, 2, 1, 3)
        Vh = V.view(b, t, g, d * h * w).permute(0, 2, 1, 3)
        attn = torch.softmax(torch.einsum('bgid,bgtd->bgit', Qh, Kh) / d ** 0.5, dim=-1)
        outs.append(torch.einsum('bgit,bgtj->bgij', attn, Vh).reshape(b, c, h, w))
    return outs


def _light_base_chain(blocks, xs):
    keys, values, outs = (), (), []
    for m, x in zip(blocks, xs):
        out, k, v = m(x, keys, values)
        keys, values = keys + (k,), values + (v,)
        outs.append(out)
    return outs


def test_base_memory_light_equals_naive_concatenation_values_and_grads():
    torch.manual_seed(0)
    blocks = torch.nn.ModuleList([MRLABase(64) for _ in range(4)])
    xs0 = [torch.randn(2, 64, 5, 7) for _ in range(4)]

    def run(fn):
        xs = [x.clone().requires_grad_() for x in xs0]
        blocks.zero_grad()
        outs = fn(blocks, xs)
        # a loss touching every block's output with different weights
        loss = sum((i + 1) * (o * torch.cos(o)).sum() for i, o in enumerate(outs))
        loss.backward()
        return ([o.detach() for o in outs], [x.grad for x in xs],
                {n: p.grad.clone() for n, p in blocks.named_parameters()})

    outs_n, gx_n, gp_n = run(_naive_base_chain)
    outs_l, gx_l, gp_l = run(_light_base_chain)
    for a, b in zip(outs_n, outs_l):
        torch.testing.assert_close(a, b)
    for a, b in zip(gx_n, gx_l):
        torch.testing.assert_close(a, b)
    assert gp_n.keys() == gp_l.keys()
    for n in gp_n:
        torch.testing.assert_close(gp_n[n], gp_l[n], msg=n)
        # the first block's query meets a softmax over one key: constant 1, no gradient
        if n != '0.mrla.Wq.weight':
            assert gp_l[n].abs().sum() > 0, n


def test_base_saves_each_value_once_not_the_concatenations():
    """Count the bytes autograd keeps: the memory-light chain must not grow quadratically."""
    torch.manual_seed(0)
    T = 6
    blocks = torch.nn.ModuleList([MRLABase(32) for _ in range(T)])
    xs = [torch.randn(1, 32, 8, 8) for _ in range(T)]
    vmap = 32 * 8 * 8

    def saved_value_elems(fn):
        seen = {}

        def pack(t):
            if t.numel() >= vmap:  # value-map-sized (or bigger) saved tensors only
                seen[(t.untyped_storage().data_ptr(), t.numel())] = t.numel()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(blocks, [x.clone().requires_grad_() for x in xs])
        return sum(seen.values())

    naive = saved_value_elems(_naive_base_chain)
    light = saved_value_elems(_light_base_chain)
    # the inputs x_t are saved by Wv in both; the values: T maps here, T(T+1)/2 in the naive
    assert light <= 2 * T * vmap
    assert naive >= (T * (T + 1) // 2) * vmap + T * vmap


def test_base_first_block_and_recorded_rows_sum_to_one():
    torch.manual_seed(0)
    m = MRLABase(32, record_attention=True)
    x = torch.randn(2, 32, 3, 5)
    out, k, v = m(x)
    torch.testing.assert_close(out, v)  # softmax over one layer is 1
    assert k.shape == (2, 2, 16)
    prev = (torch.randn(2, 2, 16), torch.randn(2, 2, 16))
    vals = (torch.randn(2, 32, 3, 5), torch.randn(2, 32, 3, 5))
    m(x, prev, vals)
    assert m.last_attention.shape == (2, 2, 3)
    torch.testing.assert_close(m.last_attention.sum(-1), torch.ones(2, 2))
    with pytest.raises(ValueError, match='2 keys and 1 values'):
        m(x, prev, vals[:1])


def test_projection_rejects_wrong_channels():
    with pytest.raises(ValueError, match='channels=64'):
        MRLAProjection(64, 16)(torch.randn(1, 32, 4, 4))
