"""tools/train.py, tools/test.py, --resume, dist_train.sh / dist_test.sh (2 CPU processes, gloo),
`mim train/test mmdet`, a config outside the repository that uses custom_imports, and
tools/test.py's --show-dir / --out with an mmdet, an mmseg and an mmpretrain config."""
import glob
import os
import os.path as osp
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, run_py

pytestmark = pytest.mark.slow
CONFIG = osp.join(REPO, 'configs/resnet/faster-rcnn_r50_fpn_1x_coco.py')


def toy_config(tmp_path, toy_root, max_iters=2, src=CONFIG, name='toy.py', data='coco', **kw):
    """The repository config pointed at the toy data, dumped to a file for the CLI tools."""
    from mmengine.config import Config

    import mmattn  # noqa: F401
    from mmattn.testing import make_toy_cfg
    if data == 'coco':
        kw.setdefault('score_thr', 0.0)
    cfg = make_toy_cfg(Config.fromfile(src), str(toy_root / data), max_iters=max_iters, **kw)
    cfg.model.backbone.depth = cfg.model.backbone.get('depth', 50)
    path = tmp_path / name
    cfg.dump(str(path))
    return str(path)


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    env['PYTHON'] = sys.executable
    return env


def test_train_resume_test(tmp_path, toy_root):
    cfg = toy_config(tmp_path, toy_root, max_iters=2)
    work = tmp_path / 'work'
    run_py([osp.join(REPO, 'tools/train.py'), cfg, '--work-dir', str(work)])
    assert (work / 'iter_2.pth').exists()
    # resume: the same run continued to 4 iterations picks up iteration 2's state
    cfg4 = toy_config(tmp_path, toy_root, max_iters=4, name='toy4.py')
    proc = run_py([osp.join(REPO, 'tools/train.py'), cfg4, '--work-dir', str(work), '--resume'])
    log = proc.stdout + proc.stderr
    assert 'resumed' in log.lower() or 'Load checkpoint' in log
    assert 'Iter(train) [3/4]' in log and 'Iter(train) [1/4]' not in log
    assert (work / 'iter_4.pth').exists()
    proc = run_py([osp.join(REPO, 'tools/test.py'), cfg, str(work / 'iter_4.pth'),
                   '--work-dir', str(tmp_path / 'test')])
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr


def test_dist_train_and_test_two_cpu_processes(tmp_path, toy_root):
    cfg = toy_config(tmp_path, toy_root, max_iters=2, batch_size=1)
    work = tmp_path / 'dist'
    env = _env()
    env['PORT'] = '29517'
    proc = subprocess.run(['bash', osp.join(REPO, 'tools/dist_train.sh'), cfg, '2',
                           '--work-dir', str(work)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    # mmengine's runtime-environment block: 'GPU number' is the world size
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert "'backend': 'gloo'" in log
    assert (work / 'iter_2.pth').exists()
    env['PORT'] = '29518'
    proc = subprocess.run(['bash', osp.join(REPO, 'tools/dist_test.sh'), cfg,
                           str(work / 'iter_2.pth'), '2', '--work-dir', str(tmp_path / 'dt')],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr


def test_mim_train_and_test(tmp_path, toy_root):
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    if not osp.exists(mim):
        mim = shutil.which('mim')
    assert mim, 'openmim is part of the environment (make install)'
    cfg = toy_config(tmp_path, toy_root, max_iters=1)
    work = tmp_path / 'mim'
    proc = subprocess.run([mim, 'train', 'mmdet', cfg, '--work-dir', str(work)], cwd=REPO,
                          env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    ckpt = work / 'iter_1.pth'
    assert ckpt.exists()
    proc = subprocess.run([mim, 'test', 'mmdet', cfg, '--checkpoint', str(ckpt), '--work-dir',
                           str(tmp_path / 'mimtest')], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr


EXTERNAL_CONFIG = '''
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)
model = dict(backbone=dict(type='AttnResNet', init_cfg=None, {backbone_extra}))
'''


def test_external_config_with_custom_imports(tmp_path, toy_root):
    """A user's own config, outside the repository, gets mmattn's modules by custom_imports
    only (no `import mmattn` anywhere in the process before the config is read)."""
    from mmattn.testing.toy_cfg import make_toy_cfg  # noqa: F401  (used in the child)
    ext = tmp_path / 'user_project'
    ext.mkdir()
    extra = os.environ.get('MMATTN_TEST_EXTERNAL_BACKBONE', 'stage_ops=None')
    (ext / 'my_retinanet.py').write_text(EXTERNAL_CONFIG.format(backbone_extra=extra))
    code = f'''
import sys
from mmengine.config import Config
cfg = Config.fromfile({str(ext / 'my_retinanet.py')!r})
assert 'mmattn' in sys.modules, 'custom_imports did not import mmattn'
from mmattn.testing import make_toy_cfg
cfg = make_toy_cfg(cfg, {str(toy_root / 'coco')!r}, max_iters=1, val=False, score_thr=0.0)
cfg.work_dir = {str(tmp_path / 'ext_work')!r}
from mmengine.runner import Runner
runner = Runner.from_cfg(cfg)
print('BACKBONE', type(runner.model.backbone).__name__)
runner.train()
print('TRAINED')
'''
    proc = run_py(code, cwd=str(ext))
    assert 'BACKBONE AttnResNet' in proc.stdout and 'TRAINED' in proc.stdout


# ------------------------------------------------- tools/test.py --show-dir / --out, per library
SHOW_CONFIGS = {  # library: (config, toy data set, test images in it)
    'mmdet': ('configs/resnet/faster-rcnn_r50_fpn_1x_coco.py', 'coco', 2),
    'mmseg': ('configs/external_attention/eanet_r50-d8_4xb4-80k_ade20k-512x512.py', 'ade20k', 2),
    'mmpretrain': ('configs/aa/aa-r50_8xb32-100e_in1k.py', 'imagenet', 3),
}


@pytest.fixture(scope='module')
def one_step_checkpoints(tmp_path_factory, toy_root):
    """{library: (toy config, checkpoint after one training step by tools/train.py)}."""
    root = tmp_path_factory.mktemp('one_step')
    runs = {}
    for library, (src, data, _) in SHOW_CONFIGS.items():
        cfg = toy_config(root, toy_root, max_iters=1, src=osp.join(REPO, src),
                         name=f'{library}.py', data=data, val=False, clip_grad=35)
        work = root / library
        run_py([osp.join(REPO, 'tools/train.py'), cfg, '--work-dir', str(work)])
        runs[library] = cfg, str(work / 'iter_1.pth')
    return runs


@pytest.mark.parametrize('library', list(SHOW_CONFIGS))
def test_test_py_show_dir_and_out(library, one_step_checkpoints, tmp_path):
    """Pictures in --show-dir and a loadable --out pickle for every library, both relative to
    the current directory (not to the work dir)."""
    cfg, ckpt = one_step_checkpoints[library]
    cwd = tmp_path / 'cwd'
    cwd.mkdir()
    run_py([osp.join(REPO, 'tools/test.py'), cfg, ckpt, '--work-dir', 'work',
            '--show-dir', 'pictures', '--out', 'predictions.pkl'], cwd=str(cwd))
    pictures = [p for p in glob.glob(str(cwd / 'pictures' / '**' / '*'), recursive=True)
                if p.endswith(('.png', '.jpg'))]
    num_images = SHOW_CONFIGS[library][2]
    assert len(pictures) == num_images, pictures
    assert not glob.glob(str(cwd / 'work' / '**' / '*.jpg'), recursive=True)
    if library == 'mmdet':  # straight into the directory, under the image's name
        assert sorted(osp.basename(p) for p in pictures) == ['000000000001.jpg',
                                                            '000000000002.jpg']
    with open(cwd / 'predictions.pkl', 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == num_images
    first = predictions[0]
    assert osp.isfile(first['img_path'])
    if library == 'mmdet':
        assert first['pred_instances']['bboxes'].shape[1] == 4
    elif library == 'mmseg':
        seg = first['pred_sem_seg']
        assert seg.dtype == np.uint8 and seg.shape == tuple(first['ori_shape'])
        assert 'seg_logits' not in first
    else:
        assert first['pred_score'].shape == (1000, ) and 'pred_label' in first
