import pytest
import torch

from mmattn.models.layers.position import (rel_to_abs, rel_to_abs_gather, relative_index_1d,
                                           slice_relative_table, to_2tuple_size)


@pytest.mark.parametrize('L', [1, 2, 5, 8])
def test_rel_to_abs_matches_gather(L):
    x = torch.randn(2, 3, L, 2 * L - 1)
    out = rel_to_abs(x)
    assert out.shape == (2, 3, L, L)
    torch.testing.assert_close(out, rel_to_abs_gather(x), rtol=0, atol=0)
    # definition: out[i, j] = x[i, j - i + L - 1]
    for i in range(L):
        for j in range(L):
            assert out[1, 2, i, j] == x[1, 2, i, j - i + L - 1]


def test_rel_to_abs_gradient_matches_gather():
    x = torch.randn(3, 4, 7, dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 4, 4, dtype=torch.float64)
    (ga, ) = torch.autograd.grad((rel_to_abs(x) * g).sum(), x)
    (gb, ) = torch.autograd.grad((rel_to_abs_gather(x) * g).sum(), x)
    torch.testing.assert_close(ga, gb)


def test_rel_to_abs_bad_shape():
    with pytest.raises(ValueError, match='2 \\* 3 - 1'):
        rel_to_abs(torch.randn(3, 4))


def test_relative_index_1d():
    idx = relative_index_1d(4)
    assert idx[0, 3] == 6 and idx[3, 0] == 0 and (idx.diagonal() == 3).all()


@pytest.mark.parametrize('L', [1, 3, 7])
def test_slice_inside_max_is_exact_centre(L):
    max_len = 7
    table = torch.randn(2 * max_len - 1, 5)
    out = slice_relative_table(table, L)
    assert out.shape == (2 * L - 1, 5)
    # row L - 1 + o of the slice is row max_len - 1 + o of the table, for every offset o
    for o in range(-(L - 1), L):
        torch.testing.assert_close(out[L - 1 + o], table[max_len - 1 + o], rtol=0, atol=0)
    if L == max_len:
        assert torch.equal(out, table)


def test_slice_other_dim_and_gradient():
    table = torch.randn(4, 2 * 6 - 1, requires_grad=True)
    out = slice_relative_table(table, 3, dim=1)
    assert out.shape == (4, 5)
    out.sum().backward()
    assert table.grad[:, 3:8].eq(1).all() and table.grad[:, :3].eq(0).all()


def test_slice_beyond_max_interpolates():
    max_len = 4
    table = torch.randn(2 * max_len - 1, 3)
    out = slice_relative_table(table, 7)                 # default beyond_max='interpolate'
    assert out.shape == (13, 3)
    # align_corners: offset 0 and both extremes are kept, values in between are linear
    torch.testing.assert_close(out[6], table[3])
    torch.testing.assert_close(out[0], table[0])
    torch.testing.assert_close(out[-1], table[-1])
    # 13 entries over 7 source rows: entry 2 sits exactly on source row 1
    torch.testing.assert_close(out[2], table[1])
    torch.testing.assert_close(out[1], 0.5 * (table[0] + table[1]))


def test_slice_beyond_max_error_names_size_and_max():
    table = torch.randn(2 * 4 - 1, 3)
    with pytest.raises(ValueError, match=r'size 5 exceeds the maximum 4'):
        slice_relative_table(table, 5, beyond_max='error', name='rel_width')
    with pytest.raises(ValueError, match=r"beyond_max='clamp'.*interpolate.*error"):
        slice_relative_table(table, 5, beyond_max='clamp')
    # inside the maximum the option does not matter
    assert slice_relative_table(table, 4, beyond_max='error').shape == (7, 3)


def test_slice_rejects_even_tables():
    with pytest.raises(ValueError, match='odd number'):
        slice_relative_table(torch.randn(6, 2), 2)


def test_to_2tuple_size():
    assert to_2tuple_size(5) == (5, 5)
    assert to_2tuple_size((3, 4)) == (3, 4)
    with pytest.raises(ValueError, match='max_size'):
        to_2tuple_size((3, 0))
