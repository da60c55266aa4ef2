"""Export a model of a config (or its backbone) to ONNX, and check it against eager PyTorch.

    python tools/deployment/export_onnx.py CONFIG --out FILE.onnx [--checkpoint CKPT]
        [--shape H W] [--dynamic] [--part backbone|neck|model] [--exporter dynamo|torchscript]
        [--check] [--verbose]

The input is one normalised image batch ``(1, 3, H, W)`` (the data preprocessor's mean/std
and resizing stay outside the graph). ``--part``: ``backbone`` (its feature maps), ``neck``
(backbone plus neck: ``extract_feat``, the detector path), ``model`` (a whole mmseg
segmentor's logits or mmpretrain classifier's scores: ``mode='tensor'``). ``--dynamic``
lets H and W vary in the graph (batch too). ``--check`` runs onnxruntime on a random input and
compares with eager float32 and float64 (with ``--dynamic`` at a second size and batch too):
the export passes when onnxruntime's distance from
float64 is at most 4 times eager float32's own (the model's noise floor).
"""
import argparse
import os
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PARTS = ('backbone', 'neck', 'model')
EXPORTERS = ('auto', 'dynamo', 'torchscript')
GAP_FACTOR = 4


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Export a config\'s model or backbone to ONNX.')
    p.add_argument('config', help='model config')
    p.add_argument('--checkpoint', help='weights to load (default: random weights)')
    p.add_argument('--out', required=True, help='ONNX file to write')
    p.add_argument('--shape', nargs=2, type=int, default=(224, 224), metavar=('H', 'W'),
                   help='input size of the example (224 224)')
    p.add_argument('--dynamic', action='store_true', help='dynamic batch, height and width')
    p.add_argument('--part', choices=PARTS, default='backbone',
                   help='what to export (backbone)')
    p.add_argument('--exporter', choices=EXPORTERS, default='auto',
                   help='torch.onnx exporter; auto: torchscript (several times faster, '
                   'checked equal) for a fixed size, dynamo with --dynamic')
    p.add_argument('--opset', type=int, default=18, help='ONNX opset (18)')
    p.add_argument('--check', action='store_true', help='compare onnxruntime with eager')
    p.add_argument('--verbose', action='store_true', help='library logs at INFO')
    args = p.parse_args(argv)
    if min(args.shape) < 1:
        p.error(f'--shape {args.shape[0]} {args.shape[1]} must be positive')
    if args.dynamic and args.exporter == 'torchscript':
        # tracing records the attention's block loops and table slices for the example's
        # H x W as constants: a graph with dynamic axes would be wrong at other sizes
        p.error('--dynamic needs --exporter dynamo (the TorchScript trace fixes H and W)')
    if args.exporter == 'auto':
        args.exporter = 'dynamo' if args.dynamic else 'torchscript'
    return args


def _flat(out):
    if isinstance(out, (tuple, list)):
        return tuple(t for o in out for t in _flat(o))
    return (out, )


def _part_module(model, part):
    import torch
    name = type(model).__name__
    if part == 'backbone':
        body = model.backbone if hasattr(model, 'backbone') else model
        forward = body.forward
    elif part == 'neck':
        if not hasattr(model, 'extract_feat'):
            raise ValueError(f'--part neck: {name} has no extract_feat (backbone plus neck); '
                             'use --part backbone')
        forward = model.extract_feat
    else:
        if hasattr(model, 'rpn_head') or hasattr(model, 'bbox_head') or \
                hasattr(model, 'roi_head'):
            raise ValueError(f'--part model: {name} is a detector, whose post-processing '
                             'does not export here; use --part neck (backbone plus neck)')
        if not hasattr(model, 'data_preprocessor'):
            raise ValueError(f'--part model: {name} is not a whole model; use --part backbone')

        def forward(x):
            return model(x, mode='tensor')

    class Part(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return _flat(forward(x))

    return Part().eval()


def export(module, x, out, exporter='dynamo', dynamic=False, opset=18):
    """Write ``module(x)``'s graph to ``out``; returns the seconds it took."""
    import torch
    t0 = time.perf_counter()
    n_out = len(module(x))
    names = dict(input_names=['input'], output_names=[f'output{i}' for i in range(n_out)])
    if exporter == 'dynamo':
        dyn = None
        if dynamic:
            d = torch.export.Dim
            dyn = ({0: d('batch', max=64), 2: d('height', min=8, max=2048),
                    3: d('width', min=8, max=2048)}, )
        torch.onnx.export(module, (x, ), out, dynamo=True, opset_version=opset,
                          dynamic_shapes=dyn, optimize=True, external_data=False, verbose=False,
                          **names)
    else:
        axes = {'input': {0: 'batch', 2: 'height', 3: 'width'}} if dynamic else None
        torch.onnx.export(module, (x, ), out, dynamo=False, opset_version=opset,
                          dynamic_axes=axes, **names)
    return time.perf_counter() - t0


def check(module, x, out):
    """``(onnxruntime's max distance from float64, eager float32's)`` per output, worst."""
    import onnxruntime as ort
    import torch
    with torch.no_grad():
        ref = module(x)
        ref64 = module.double()(x.double())
    module.float()
    sess = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    if len(got) != len(ref):
        raise RuntimeError(f'onnxruntime gave {len(got)} outputs, eager {len(ref)}')
    err = gap = 0.
    for g, r, r64 in zip(got, ref, ref64):
        if tuple(g.shape) != tuple(r.shape):
            raise RuntimeError(f'onnxruntime output {g.shape}, eager {tuple(r.shape)}')
        err = max(err, (torch.from_numpy(g).double() - r64).abs().max().item())
        gap = max(gap, (r.double() - r64).abs().max().item())
    return err, gap


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, REPO)
    from mmattn.analysis.cli import quiet
    quiet(args.verbose)
    if not args.verbose:
        import logging
        # the dynamo exporter logs every failed optional registry lookup as an error
        logging.getLogger('torch.onnx').setLevel(logging.CRITICAL)
    import torch

    from mmattn.analysis.build import build_model, load_cfg
    from mmattn.analysis.cli import quiet_mmengine
    torch.manual_seed(0)
    cfg = load_cfg(args.config)
    model = build_model(cfg)
    quiet_mmengine()
    if args.checkpoint:
        from mmengine.runner import load_checkpoint
        from mmattn.apis.runner import check_checkpoint_fits
        check_checkpoint_fits(model, args.checkpoint)
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    else:
        model.init_weights()
    module = _part_module(model, args.part)
    x = torch.randn(1, 3, *args.shape)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    try:
        seconds = export(module, x, args.out, args.exporter, args.dynamic, args.opset)
    except Exception as e:
        if not args.dynamic or args.verbose:
            raise
        # a size-dependent Python loop or table slice in some operator (LESA, AA): one line
        import re
        text = re.sub(r'\x1b\[[0-9;]*m', '', str(e)).strip()  # the exporter colours its text
        first = text.splitlines()[0] if text else type(e).__name__
        raise ValueError(f'--dynamic: this model does not export with symbolic H, W '
                         f'({first[:200]}); export one graph per input size without '
                         '--dynamic') from None
    print(f'wrote {args.out} ({args.exporter} exporter, {args.part}) in {seconds:.1f} s')
    if args.check:
        # a dynamic graph is checked at a second size too
        sizes = [x] + ([torch.randn(2, 3, args.shape[0] + 8, args.shape[1] + 16)]
                       if args.dynamic else [])
        err, gap = (max(v) for v in zip(*(check(module, t, args.out) for t in sizes)))
        ok = err <= GAP_FACTOR * gap + 1e-7
        print(f'onnxruntime vs eager float64: {err:.3g}; eager float32 vs float64: {gap:.3g} '
              f'({"within" if ok else "OUTSIDE"} {GAP_FACTOR}x)')
        if not ok:
            sys.exit(1)
    return args.out


if __name__ == '__main__':
    try:
        main(sys.argv[1:])
    except (ValueError, FileNotFoundError) as e:  # bad input: one line
        sys.exit(f'export_onnx.py: error: {e}')
