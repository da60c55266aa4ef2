"""`import mmattn` registers every module where mmdet, mmseg and mmpretrain look."""
import pytest

EXPECTED = ['AttnResNet', 'AttnResNeXt', 'AttnResNeSt']


@pytest.mark.parametrize('library', ['mmdet', 'mmseg', 'mmpretrain'])
def test_visible_from_each_library(library):
    import importlib

    import mmattn  # noqa: F401
    from mmengine.registry import MODELS as ROOT
    registry = importlib.import_module(f'{library}.registry').MODELS
    for name in EXPECTED:
        assert registry.get(name) is ROOT.get(name), (library, name)
        assert registry.get(name) is not None, (library, name)


def test_backbone_builds_in_each_scope():
    import torch

    import mmattn  # noqa: F401
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG
    for registry in (DET, SEG):
        m = registry.build(dict(type='AttnResNet', depth=50, out_indices=(3, )))
        assert m(torch.zeros(1, 3, 64, 64))[0].shape == (1, 2048, 2, 2)
