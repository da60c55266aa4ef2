"""The TorchScript ONNX exporter (``torch.onnx.export(..., dynamo=False)``) on every operator:
the traced forwards use plain tensor ops (no custom autograd Function writing into
``new_empty`` buffers, which failed for LESA/AA and gave LA-layer a wrong graph), so the
export works and onnxruntime agrees with eager within the float32/float64 noise floor
(``deploy_cases.GAP_FACTOR``); a wrong graph fails the comparison."""
import io
import warnings

import pytest
import torch

from deploy_cases import all_cases, assert_within_gap, build_case, example_input, \
    float64_reference, run_onnx

CASES = all_cases()


@pytest.mark.parametrize('name', sorted(CASES))
def test_torchscript_export_equals_eager(name):
    m = build_case(CASES[name])
    x = example_input()
    ref, ref64 = float64_reference(m, x)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # TracerWarnings about Python ints in shapes
        torch.onnx.export(m, (x, ), f, dynamo=False, opset_version=17)
    assert_within_gap(run_onnx(f.getvalue(), x), ref, ref64)
