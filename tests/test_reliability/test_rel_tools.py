"""tools/train.py and tools/test.py stop early, naming the setting, for a missing data set, AMP
on a machine without a GPU, and a checkpoint that does not fit (in process: the same functions
the command lines run)."""
import importlib.util
import os.path as osp

import pytest
import torch

from conftest import REPO

CLS_CONFIG = osp.join(REPO, 'configs/aa/aa-r50_8xb32-100e_in1k.py')
DET_CONFIG = osp.join(REPO, 'configs/resnet/retinanet_r50_fpn_1x_coco.py')


def tool(name):
    spec = importlib.util.spec_from_file_location(f'mmattn_tools_{name}',
                                                  osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_data_root_missing(tmp_path):
    train = tool('train')
    missing = str(tmp_path / 'no_such_imagenet')
    with pytest.raises(FileNotFoundError) as info:
        train.main([CLS_CONFIG, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                    f'train_dataloader.dataset.data_root={missing}'])
    msg = str(info.value)
    assert f"train_dataloader.dataset.data_root='{missing}' does not exist" in msg
    assert 'make_toy_data.py' in msg and '--cfg-options train_dataloader.dataset.data_root' in msg


def test_train_ann_file_missing(tmp_path, toy_root):
    train = tool('train')
    root = str(toy_root / 'coco')
    with pytest.raises(FileNotFoundError, match=r"train_dataloader.dataset.ann_file="
                       r"'annotations/instances_train2017.json' does not exist"):
        train.main([DET_CONFIG, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                    f'train_dataloader.dataset.data_root={tmp_path}',
                    f'val_dataloader.dataset.data_root={root}'])


def test_test_data_root_missing(tmp_path):
    test = tool('test')
    ckpt = tmp_path / 'c.pth'
    torch.save({}, str(ckpt))
    with pytest.raises(FileNotFoundError,
                       match=r"test_dataloader.dataset.data_root='/nonexistent/ade' does not "
                       r"exist \(looked for '/nonexistent/ade'"):
        test.main([CLS_CONFIG, str(ckpt), '--cfg-options',
                   'test_dataloader.dataset.data_root=/nonexistent/ade'])


def test_test_checkpoint_missing(tmp_path):
    test = tool('test')
    with pytest.raises(FileNotFoundError, match=r"checkpoint '\S+nothing.pth' does not exist"):
        test.main([CLS_CONFIG, str(tmp_path / 'nothing.pth')])


@pytest.mark.skipif(torch.cuda.is_available(), reason='AMP runs where there is a GPU')
def test_amp_on_cpu_is_a_clear_error(tmp_path):
    train = tool('train')
    with pytest.raises(RuntimeError, match=r'--amp: mixed-precision training needs a GPU .*'
                       r'AmpOptimWrapper .*leave out --amp'):
        train.setup_cfg(train.parse_args([CLS_CONFIG, '--amp']))
    with pytest.raises(RuntimeError, match=r"optim_wrapper.type='AmpOptimWrapper' \(in the "
                       r'config\).*--cfg-options optim_wrapper.type=OptimWrapper'):
        train.setup_cfg(train.parse_args([CLS_CONFIG, '--cfg-options',
                                          'optim_wrapper.type=AmpOptimWrapper']))


def test_config_errors(tmp_path):
    train = tool('train')
    with pytest.raises(FileNotFoundError, match=r"config file '\S+missing.py' does not exist"):
        train.main([str(tmp_path / 'missing.py')])
    plain = tmp_path / 'plain.py'
    plain.write_text("model = dict(type='X')\n")
    with pytest.raises(ValueError, match=r"default_scope=None; mmattn tools accept mmdet, "
                       'mmseg, mmpretrain'):
        train.main([str(plain)])
