"""The converter CLIs declare their --target choices without importing mmattn (so that --help is
quick): they must stay the converters' own TARGETS."""
import importlib.util
import os.path as osp

import pytest

from mmattn.converters import eanet, lesa, mrla

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.parametrize('name,module', [('lesa', lesa), ('mrla', mrla), ('eanet', eanet)])
def test_cli_targets_are_the_converters(name, module):
    path = osp.join(ROOT, 'tools', 'model_converters', f'{name}_to_mmattn.py')
    spec = importlib.util.spec_from_file_location(f'{name}_to_mmattn', path)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert tuple(cli.TARGETS) == tuple(module.TARGETS)
    assert cli.parse_args(['a.pth', 'b.pth']).target == module.TARGETS[0]
