"""mmattn: attention backbones for OpenMMLab 3.x."""
import glob
import os
import os.path as osp
import re
import warnings

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    with open(osp.join(HERE, 'mmattn', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def read_requirements(name):
    """Requirement lines of requirements/<name>, comments dropped."""
    out = []
    with open(osp.join(HERE, 'requirements', name)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                out.append(line)
    return out


def ext_modules():
    """``mmattn._ext`` from ``mmattn/ops/csrc/*.cpp`` where torch is importable (skipped with
    ``MMATTN_WITH_EXT=0``), and a build_ext that warns instead of failing: the package runs
    without it (mmattn/ops/__init__.py)."""
    if os.environ.get('MMATTN_WITH_EXT', '1') == '0':
        return [], {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        warnings.warn('mmattn: torch is not importable at build time; the compiled CPU '
                      'kernels are not built (the pure-PyTorch kernels run instead)')
        return [], {}

    class OptionalBuildExt(BuildExtension):

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
            except Exception as e:  # a missing compiler must not stop the install
                warnings.warn(f'mmattn: building {ext.name} failed ({e}); the package runs '
                              'with its pure-PyTorch kernels')

    # -fopenmp: at::parallel_for is inline OpenMP; without it the kernels run on one thread
    # whatever torch.set_num_threads says (libgomp.so.1 resolves to the one torch loads)
    args = ['-O3', '-fopenmp', '-fno-math-errno', '-fno-trapping-math']
    if os.environ.get('MMATTN_EXT_NATIVE', '1') != '0':
        args.append('-march=native')  # built where it runs (make install), like a source build
    sources = sorted(glob.glob(osp.join('mmattn', 'ops', 'csrc', '*.cpp')))
    ext = CppExtension('mmattn._ext', sources, extra_compile_args=args,
                       extra_link_args=['-fopenmp'])
    return [ext], {'build_ext': OptionalBuildExt.with_options(use_ninja=False)}


EXT_MODULES, CMDCLASS = ext_modules()

setup(
    name='mmattn',
    version=read_version(),
    description='Attention backbones (LESA, AA, LA-layer, MRLA, External Attention) '
    'for OpenMMLab 3.x',
    long_description=open(osp.join(HERE, 'README.md')).read() if osp.exists(
        osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,
    ext_modules=EXT_MODULES,
    cmdclass=CMDCLASS,
    # torch is left to the user (CPU or CUDA build); mmcv must be built with ops.
    install_requires=[
        'torch>=2.0',
        'mmengine>=0.10.0,<1.0.0',
        'mmcv>=2.0.0,<2.4.0',
        'mmdet>=3.0.0',
        'mmsegmentation>=1.0.0',
        'mmpretrain>=1.0.0',
    ] + read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt'),
                    'deploy': read_requirements('deploy.txt')},
)
