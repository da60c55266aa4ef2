"""MRLA's Figure 1a as PNG files: mmattn.analysis.mrla_maps (the work of
tools/analysis_tools/mrla_attention_map.py)."""
import os.path as osp

import numpy as np
import pytest
import torch

pytest.importorskip('mmseg')

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


@pytest.fixture(scope='module')
def tool():
    from mmattn.analysis import mrla_maps
    return mrla_maps


def test_base_rows_sum_to_one_and_light_gates(tool):
    torch.manual_seed(0)
    x = tool.load_input(None, img_size=64)
    base = tool.collect_scores(tool.build_backbone(None, 'base'), x)
    assert [s.shape for s in base] == [(3, 3), (4, 4), (6, 6), (3, 3)]
    for s in base:
        np.testing.assert_allclose(np.nansum(s, axis=1), 1.0, rtol=1e-5)
        assert np.isnan(s[np.triu_indices(len(s), k=1)]).all()
        assert s[0, 0] == pytest.approx(1.0)
    one_head = tool.collect_scores(tool.build_backbone(None, 'base'), x, head=3)
    for s in one_head:
        np.testing.assert_allclose(np.nansum(s, axis=1), 1.0, rtol=1e-5)
    light = tool.collect_scores(tool.build_backbone(None, 'light'), x)
    assert [s.shape for s in light] == [(3, 8), (4, 16), (6, 32), (3, 64)]
    assert all(((s >= 0) & (s <= 1)).all() for s in light)  # sigmoid gates


def test_main_writes_pngs(tool, tmp_path):
    written = tool.draw_maps(img_size=64, out_dir=str(tmp_path))
    assert sorted(osp.basename(p) for p in written) == ['mrla_base_attention.png',
                                                         'mrla_light_gates.png']
    for p in written:
        with open(p, 'rb') as f:
            assert f.read(8) == PNG_MAGIC


def test_main_with_config_checkpoint_and_image(tool, tmp_path):
    from PIL import Image
    img = tmp_path / 'img.png'
    Image.fromarray((np.random.rand(40, 50, 3) * 255).astype(np.uint8)).save(img)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text("model = dict(type='ImageClassifier', backbone=dict(type='MRLAResNet', "
                   "depth=50, mrla_type='base'))\n")
    backbone = tool.build_backbone(str(cfg))
    assert backbone.mrla_type == 'base'
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': {'backbone.' + k: v
                               for k, v in backbone.state_dict().items()}}, ckpt)
    written = tool.draw_maps(str(cfg), str(ckpt), str(img), img_size=48, head=0,
                             out_dir=str(tmp_path / 'o'))
    assert [osp.basename(p) for p in written] == ['mrla_base_attention.png']
    with pytest.raises(ValueError, match='must be an MRLAResNet'):
        bad = tmp_path / 'bad.py'
        bad.write_text("model = dict(type='ResNet', depth=50)\n")
        tool.build_backbone(str(bad))
