"""Each compatibility fix: the failure it prevents (fix disabled) and the fixed behaviour."""
import numpy as np
import pytest

from conftest import run_py

RESUME_SNIPPET = r'''
import os, tempfile, torch
import numpy as np
import mmattn
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint
hub = MessageHub.get_instance('compat-test')
hub.update_scalar('train/loss', 1.5)
ckpt = dict(meta=dict(seed=np.int64(7), epoch=1), message_hub=hub.state_dict(),
            state_dict={'w': torch.ones(2)})
path = os.path.join(tempfile.mkdtemp(), 'ckpt.pth')
save_checkpoint(ckpt, path)
loaded = _load_checkpoint(path, map_location='cpu')
print('LOADED', float(loaded['message_hub']['log_scalars']['train/loss'].current()),
      int(loaded['meta']['seed']))
'''


def _mmengine_falls_back_to_unsafe_load():
    """OneDL's mmengine retries a failed weights_only load with weights_only=False itself."""
    from mmengine.runner import checkpoint
    return hasattr(checkpoint, '_safe_torch_load')


def test_torch_load_resume_needs_fix():
    """mmengine checkpoints (message hub, numpy seed) load under torch's weights_only default."""
    if _mmengine_falls_back_to_unsafe_load():
        pytest.skip("this mmengine (OneDL) falls back to weights_only=False on its own")
    proc = run_py(RESUME_SNIPPET, env={'MMATTN_COMPAT_DISABLE': 'torch_load_weights_only'},
                  check=False)
    assert proc.returncode != 0
    assert 'HistoryBuffer' in proc.stderr or 'Unsupported global' in proc.stderr
    proc = run_py(RESUME_SNIPPET)
    assert 'LOADED 1.5 7' in proc.stdout


def test_stock_mmengine_checkpoint_gets_a_clear_error_and_an_opt_in(tmp_path):
    """A checkpoint written without the fix (stock mmengine pickles functions via getattr) is
    refused with the globals named; MMATTN_TRUST_CHECKPOINTS=1 loads it."""
    save = RESUME_SNIPPET.split('loaded =')[0] + 'print("PATH", path)'
    proc = run_py(save, env={'MMATTN_COMPAT_DISABLE': 'torch_load_weights_only'})
    path = proc.stdout.split('PATH ')[-1].strip()
    load = ('import mmattn\nfrom mmengine.runner.checkpoint import _load_checkpoint\n'
            f'c = _load_checkpoint({path!r}, map_location="cpu")\nprint("OK", sorted(c))')
    proc = run_py(load, check=False)
    assert proc.returncode != 0
    assert 'builtins.getattr' in proc.stderr and 'MMATTN_TRUST_CHECKPOINTS' in proc.stderr
    proc = run_py(load, env={'MMATTN_TRUST_CHECKPOINTS': '1'})
    assert "OK ['message_hub', 'meta', 'state_dict']" in proc.stdout


def test_torch_load_still_refuses_arbitrary_globals(tmp_path):
    """The allow-list is narrow: a pickled arbitrary class still needs weights_only=False."""
    import torch

    import mmattn  # noqa: F401
    from mmengine.runner.checkpoint import _load_checkpoint
    path = tmp_path / 'evil.pth'
    torch.save({'x': _Arbitrary()}, path)
    with pytest.raises(Exception, match='Unsupported global|weights_only'):
        _load_checkpoint(str(path), map_location='cpu')


class _Arbitrary:
    pass


def _reference_hue(img, hue_factor):
    """numpy 1 semantics of mmcv.adjust_hue (cv2 backend): hue += uint8(factor*255) mod 256."""
    import cv2
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV_FULL)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int64) + int(hue_factor * 255)) % 256).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL)


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_adjust_hue_negative(backend):
    import mmcv

    import mmattn  # noqa: F401
    from mmattn import compat
    rng = np.random.RandomState(0)
    img = rng.randint(0, 256, size=(16, 16, 3)).astype(np.uint8)
    if not compat.apply()['numpy2_adjust_hue']:
        pytest.skip("this mmcv's adjust_hue does not overflow (numpy 1 or onedl-mmcv)")
    original = compat.adjust_hue.__wrapped__
    with pytest.raises(OverflowError):
        original(img, -0.2, backend=backend)
    out = mmcv.adjust_hue(img, -0.2, backend=backend)
    assert out.shape == img.shape and out.dtype == img.dtype
    if backend == 'cv2':
        np.testing.assert_array_equal(out, _reference_hue(img, -0.2))
    # positive factors: identical to mmcv's own function
    np.testing.assert_array_equal(mmcv.adjust_hue(img, 0.3, backend=backend),
                                  original(img, 0.3, backend=backend))
    with pytest.raises(ValueError, match='hue_factor'):
        mmcv.adjust_hue(img, 0.7)


STUB_SNIPPET = r'''
import mmattn, torchvision, sys
from mmattn.utils.torchvision_stub import is_stub
import mmpretrain.models, mmpretrain.datasets
print('STUB', is_stub(), torchvision.__version__)
'''


def test_torchvision_stub_lets_mmpretrain_import():
    proc = run_py(STUB_SNIPPET)
    assert 'STUB True 0.0.0+mmattn.stub' in proc.stdout
    proc = run_py(STUB_SNIPPET, env={'MMATTN_COMPAT_DISABLE': 'torchvision_stub'}, check=False)
    assert proc.returncode != 0  # mmpretrain cannot be imported without it here


def test_real_torchvision_is_left_alone(tmp_path):
    """A working torchvision (here a fake importable package) is never replaced."""
    pkg = tmp_path / 'torchvision'
    pkg.mkdir()
    (pkg / '__init__.py').write_text("__version__ = '9.9.9-real'\n")
    proc = run_py('import mmattn, torchvision; from mmattn.utils.torchvision_stub import '
                  'is_stub; print("TV", torchvision.__version__, is_stub())',
                  env={'PYTHONPATH': str(tmp_path)})
    assert 'TV 9.9.9-real False' in proc.stdout


def test_stub_box_ops_and_clear_errors():
    import torch

    from mmattn.utils import torchvision_stub
    mods = torchvision_stub.build_modules()
    boxes = mods['torchvision.ops.boxes']
    a = torch.tensor([[0., 0., 2., 2.], [1., 1., 3., 3.]])
    b = torch.tensor([[1., 1., 2., 2.]])
    torch.testing.assert_close(boxes.box_iou(a, b), torch.tensor([[0.25], [0.25]]))
    torch.testing.assert_close(boxes.generalized_box_iou(a, a)[0, 1],
                               torch.tensor(1 / 7 - (9 - 7) / 9))
    with pytest.raises(RuntimeError, match='torchvision is not installed'):
        mods['torchvision.transforms'].RandomResizedCrop(224)


def test_compat_disable_rejects_unknown_names():
    proc = run_py('import mmattn', env={'MMATTN_COMPAT_DISABLE': 'nope'}, check=False)
    assert proc.returncode != 0 and 'accepted' in proc.stderr and 'nope' in proc.stderr


DIST_SNIPPET = r'''
import os
os.environ.update(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                  MASTER_PORT=os.environ['TEST_PORT'])
import mmattn
import torch.distributed as dist
from mmengine.dist import init_dist
init_dist('pytorch', backend='nccl')
print('BACKEND', dist.get_backend(), dist.get_world_size())
'''


def test_cpu_distributed_init():
    """init_dist('pytorch') on a machine without CUDA (mmengine calls torch.cuda.set_device)."""
    import torch
    if torch.cuda.is_available():
        pytest.skip('the fix is only active without CUDA')
    proc = run_py(DIST_SNIPPET, env={'MMATTN_COMPAT_DISABLE': 'cpu_distributed',
                                     'TEST_PORT': '29611'}, check=False)
    assert proc.returncode != 0 and '_cuda_setDevice' in proc.stderr
    proc = run_py(DIST_SNIPPET, env={'TEST_PORT': '29612'})
    assert 'BACKEND gloo 1' in proc.stdout


def test_onedl_package_names(monkeypatch):
    """A scope whose OpenMMLab distribution is absent but whose onedl- one is installed is
    looked up under the onedl- name; an OpenMMLab install is left alone."""
    from mmengine.config.utils import MODULE2PACKAGE

    from mmattn import compat
    installed = {'mmsegmentation': False, 'onedl-mmsegmentation': True}
    monkeypatch.setattr(compat, '_distribution_installed',
                        lambda name: installed.get(name, True))
    monkeypatch.setitem(MODULE2PACKAGE, 'mmseg', 'mmsegmentation')
    assert compat.fix_onedl_package_names() is True
    assert MODULE2PACKAGE['mmseg'] == 'onedl-mmsegmentation'
    monkeypatch.setitem(MODULE2PACKAGE, 'mmseg', 'mmsegmentation')
    installed['mmsegmentation'] = True
    assert compat.fix_onedl_package_names() is False
    assert MODULE2PACKAGE['mmseg'] == 'mmsegmentation'
