"""The backbone benchmark's cases: the papers' backbones from our configs, and every
registered operator in a ResNet-50 (from the registry: a new operator is benchmarked without
an edit here).

A case name is ``NAME`` or ``NAME@explicit`` / ``NAME@fused`` (LESA and AA on that attention
path instead of ``auto``), or ``NAME@ext`` / ``NAME@chunked`` / ``NAME@sdpa`` (the fused path,
where ``auto`` takes it, with that kernel, through ``default_attn_kernel``: kernels compared
inside a whole backbone). The group name ``attention`` stands for every config backbone with
attention (:data:`ATTENTION_CASES`: all but the convolutional baselines). At 224x224 a case is
the backbone of an ImageNet config (all stages train, BatchNorm in training mode, the last
stage out); at detection sizes the backbone of a detection config (stem and stage 1 frozen,
BatchNorm in eval mode, four maps out).
"""
# name: (label, ImageNet config, detection config, overrides of the backbone at detection sizes)
DET_SETTINGS = dict(frozen_stages=1, norm_eval=True, out_indices=(0, 1, 2, 3))
CLS_SETTINGS = dict(frozen_stages=-1, norm_eval=False, out_indices=(3, ))
# static LESA has ImageNet configs only: at detection sizes it is the LESA detection backbone
# with the static fusion (the one setting the two ImageNet configs differ in)
STATIC_FUSION = dict(_fusion='static')
CONFIG_CASES = {
    'resnet50': ('ResNet-50', 'configs/lesa/resnet50_4xb32-cos-90e_in1k.py',
                 'configs/la_layer/faster-rcnn_r50_fpn_ms-range-1x_coco.py', {}),
    'resnext50': ('ResNeXt-50 (32x4d)',
                  'configs/la_layer/resnext50-32x4d_8xb64-warmup-coslr_in1k.py',
                  'configs/la_layer/faster-rcnn_x50-32x4d_fpn_ms-range-1x_coco.py', {}),
    'wrn50': ('WRN-50-2', 'configs/lesa/wrn50_4xb32-cos-90e_in1k.py',
              'configs/lesa/mask-rcnn_wrn50_fpn_1x_coco.py', {}),
    'lesa_r50': ('LESA-R50', 'configs/lesa/lesa-r50_4xb32-cos-90e_in1k.py',
                 'configs/lesa/mask-rcnn_lesa-r50_fpn_1x_coco.py', {}),
    'sa_r50': ('SA-R50', 'configs/lesa/sa-r50_4xb32-cos-90e_in1k.py',
               'configs/lesa/mask-rcnn_sa-r50_fpn_1x_coco.py', {}),
    'static_lesa_r50': ('static-LESA-R50', 'configs/lesa/static-lesa-r50_4xb32-cos-90e_in1k.py',
                        'configs/lesa/mask-rcnn_lesa-r50_fpn_1x_coco.py', STATIC_FUSION),
    'lesa_wrn50': ('LESA-WRN50', 'configs/lesa/lesa-wrn50_4xb32-cos-90e_in1k.py',
                   'configs/lesa/mask-rcnn_lesa-wrn50_fpn_1x_coco.py', {}),
    'sa_wrn50': ('SA-WRN50', 'configs/lesa/sa-wrn50_4xb32-cos-90e_in1k.py',
                 'configs/lesa/mask-rcnn_sa-wrn50_fpn_1x_coco.py', {}),
    'static_lesa_wrn50': ('static-LESA-WRN50',
                          'configs/lesa/static-lesa-wrn50_4xb32-cos-90e_in1k.py',
                          'configs/lesa/mask-rcnn_lesa-wrn50_fpn_1x_coco.py', STATIC_FUSION),
    'aa_r50': ('AA-R50', 'configs/aa/aa-r50_8xb32-100e_in1k.py',
               'configs/aa/retinanet_aa-r50_fpn_1x_coco.py', {}),
    'la_r50': ('LA-R50', 'configs/la_layer/la-resnet50_8xb64-warmup-coslr_in1k.py',
               'configs/la_layer/faster-rcnn_la-r50_fpn_ms-range-1x_coco.py', {}),
    'la_x50': ('LA-X50 (32x4d)', 'configs/la_layer/la-resnext50-32x4d_8xb64-warmup-coslr_in1k.py',
               'configs/la_layer/faster-rcnn_la-x50-32x4d_fpn_ms-range-1x_coco.py', {}),
    'mrla_light_r50': ('MRLA-light-R50', 'configs/mrla/mrla-light-r50_8xb32_in1k.py',
                       'configs/mrla/faster-rcnn_mrla-light-r50_fpn_1x_coco.py', {}),
    # no detection config: its ImageNet backbone with the detection settings
    'mrla_base_r50': ('MRLA-base-R50', 'configs/mrla/mrla-base-r50_8xb32_in1k.py',
                      'configs/mrla/mrla-base-r50_8xb32_in1k.py', DET_SETTINGS),
    'ea_r50': ('EA-plugin R50 (c4, c5)',
               'configs/external_attention/mask-rcnn_r50-ea-c4-c5_fpn_1x_coco.py',
               'configs/external_attention/mask-rcnn_r50-ea-c4-c5_fpn_1x_coco.py', {}),
    # an isotropic classifier backbone (T2T-ViT-7 layout, trained at 384): run at every size
    # as it is (its position table is resized to the input), one cls-token output
    'eamlp7': ('EAMLP-7', 'configs/external_attention/eamlp-7_8xb64_in1k-384px.py',
               'configs/external_attention/eamlp-7_8xb64_in1k-384px.py', {}),
}
# the EA plugin has no ImageNet config: at 224 its detection backbone gets the ImageNet settings
CLS_OVERRIDES = {'ea_r50': CLS_SETTINGS}
# the operators with two attention paths: their explicit path runs as an extra case
EXPLICIT_VARIANTS = ('lesa_r50@explicit', 'sa_r50@explicit', 'aa_r50@explicit')
BASELINE = 'resnet50'
# the convolutional baselines; every other config case has attention
CONV_CASES = ('resnet50', 'resnext50', 'wrn50')
ATTENTION_CASES = tuple(n for n in CONFIG_CASES if n not in CONV_CASES)
GROUPS = {'attention': ATTENTION_CASES}
PATHS = ('auto', 'explicit', 'fused')
KERNELS = ('ext', 'chunked', 'sdpa')
OP_PREFIX = 'op:'
# an operator case: the baseline's ResNet-50 layout with the operator (its defaults) in every
# block of stages 3 and 4, where the papers with quadratic attention put it
OP_BACKBONE = dict(type='AttnResNet', depth=50, op_blocks='all')


def operator_cases():
    """``op:<registry name>`` of every registered 3x3-conv replacement."""
    from mmattn.models.layers.base import list_operators
    return [OP_PREFIX + name for name in sorted(list_operators())]


def all_cases():
    """Every case name, in the default order: configs, explicit paths, operators."""
    return list(CONFIG_CASES) + list(EXPLICIT_VARIANTS) + operator_cases()


def has_kernels(name):
    """Whether the case runs the exact relative attention (its fused kernels apply)."""
    base = name.partition('@')[0]
    return base.startswith(('lesa_', 'sa_', 'static_lesa_', 'aa_'))


def expand_groups(names):
    """``names`` with each group name (``attention``) replaced by its cases, in order, once."""
    out = []
    for name in names:
        for n in GROUPS.get(name, (name, )):
            if n not in out:
                out.append(n)
    return out


def check_case(name):
    """None, or why ``name`` is not a case."""
    base, _, impl = name.partition('@')
    if impl not in ('', ) + PATHS + KERNELS:
        return (f'{name!r}: after @ comes an attention path (explicit, fused, auto) or a '
                'kernel (ext, chunked, sdpa)')
    if base in CONFIG_CASES or (base.startswith(OP_PREFIX) and base in operator_cases()):
        return None
    return (f'unknown backbone {name!r}; choose from {", ".join(all_cases())} (optionally '
            '@explicit / @fused / @ext / @chunked / @sdpa), or the group attention')


def label(name):
    base, _, impl = name.partition('@')
    text = (f'{base[len(OP_PREFIX):]} in R50 (c4, c5)' if base.startswith(OP_PREFIX)
            else CONFIG_CASES[base][0])
    return text + (f' [{impl}]' if impl else '')


def backbone_cfg(name, detection):
    """The backbone config of a case (without ``@impl``) and the config file it comes from."""
    from .build import load_cfg
    if name.startswith(OP_PREFIX):
        op = dict(type=name[len(OP_PREFIX):])
        bb = dict(OP_BACKBONE, stage_ops=(None, None, op, op),
                  **(DET_SETTINGS if detection else CLS_SETTINGS))
        cfg = load_cfg(CONFIG_CASES[BASELINE][2 if detection else 1])
        cfg.model.backbone = bb
        return cfg
    _, cls_cfg, det_cfg, det_over = CONFIG_CASES[name]
    cfg = load_cfg(det_cfg if detection else cls_cfg)
    bb = cfg.model.backbone
    bb.pop('init_cfg', None)
    over = dict(det_over if detection else CLS_OVERRIDES.get(name, {}))
    fusion = over.pop('_fusion', None)
    bb.update(over)
    if fusion:  # every LESA of the backbone gets this fusion
        bb.stage_ops = tuple(None if op is None else dict(op, fusion=fusion)
                             for op in bb.stage_ops)
    return cfg


def build_backbone(name, size):
    """The backbone of a case (without ``@impl``) at ``size`` (H, W, batch), train mode."""
    from .build import build_model
    cfg = backbone_cfg(name, size[0] > 224 or size[1] > 224)
    model = build_model(cfg, part='backbone')
    model.train()
    return model


def make_step(name, size, device):
    """``step()``: one forward+backward of the case (loss = sum of the output means);
    ``step.release()`` drops the gradients."""
    import torch

    from mmattn.models.layers.attention import default_attn_impl, default_attn_kernel
    base, _, impl = name.partition('@')
    # NAME@<kernel>: the path auto chooses, the fused one with that kernel
    kernel, impl = (impl, 'auto') if impl in KERNELS else ('auto', impl)
    model = build_backbone(base, size).to(device)
    h, w, b = size
    torch.manual_seed(0)
    x = torch.randn(b, 3, h, w, device=device)

    def release():  # the time worker holds every backbone: keep only their weights
        for p in model.parameters():
            p.grad = None

    def step():
        release()
        with default_attn_impl(impl or 'auto'), default_attn_kernel(kernel):
            outs = model(x)
        outs = outs if isinstance(outs, (tuple, list)) else (outs, )
        sum(o.float().mean() for o in outs).backward()
    step.release, step.model = release, model
    return step


# (B, heads, HW, HW) fp32 tensors per explicit attention layer at the peak of a backbone's
# forward+backward: LESA-R50 [explicit] at 800x1344 (6 layers of 8 x 4200^2) peaked at 13.0 GiB
EXPLICIT_TENSORS_PER_LAYER = 4


def explicit_estimate_gib(name, size):
    """Rough peak of the explicit path's ``(HW)^2`` attention tensors, 0 where it does not
    apply: ``EXPLICIT_TENSORS_PER_LAYER`` (B, 8 heads, HW, HW) fp32 tensors for every attention
    layer at the largest attention resolution (each keeps its logits for backward)."""
    base, _, impl = name.partition('@')
    if impl != 'explicit' or not base.startswith(('lesa_', 'sa_', 'static_lesa_', 'aa_')):
        return 0.0
    h, w, b = size
    detection = h > 224 or w > 224
    if base.startswith('aa_'):  # stage 2 (4 blocks) at stride 8, the first after its 3x3/2 pooling
        stride, layers = 8, 4
    elif detection:  # layer3[1:] and the stride-2 layer4[0] at stride 16
        stride, layers = 16, 6
    else:  # layer3[1:] and layer4 (stride 1) at stride 16
        stride, layers = 16, 8
    L = -(-h // stride) * -(-w // stride)
    return EXPLICIT_TENSORS_PER_LAYER * layers * b * 8 * L * L * 4 / 2**30
