#!/usr/bin/env bash
# Check mmattn on OneDL's continuation of the OpenMMLab stack, in a separate venv.
# Usage: bash tools/misc/check_onedl.sh [VENV_DIR]   (default /tmp/onedl-venv)
# Builds onedl-mmcv from source with its ops (tens of minutes on 2 cores; pip caches the wheel),
# installs onedl-mmengine/-mmdetection/-mmsegmentation/-mmpretrain and mmattn (--no-deps), then
# runs the checks the README lists. The pinned OpenMMLab stack of `make install` is untouched.
set -euo pipefail
VENV=${1:-/tmp/onedl-venv}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$VENV/bin/python" ] || python3.11 -m venv "$VENV"
P="$VENV/bin/python"
$P -m pip install -q -U pip "setuptools>=77.0.3,<80" wheel ninja
$P -m pip install -q torch==2.13.0
$P -m pip install -q onedl-mmengine
echo "[onedl] building onedl-mmcv $(date)"
MMCV_WITH_OPS=1 $P -m pip install --no-build-isolation onedl-mmcv
$P -m pip install -q onedl-mmdetection onedl-mmsegmentation onedl-mmpretrain pytest pytest-timeout \
    ftfy regex
$P -m pip install -q --no-deps -e "$REPO"
cd "$REPO"
$P -c "import mmattn.compat as c; print('[onedl] active compat fixes:', c.apply())"
OMP_NUM_THREADS=2 $P -m pytest -q -p no:cacheprovider -rs tests/test_compat.py \
    tests/test_registration.py tests/test_datasets \
    tests/test_tools/test_train_test.py::test_train_resume_test \
    tests/test_tools/test_train_test.py::test_dist_train_and_test_two_cpu_processes \
    tests/test_tools/test_train_test.py::test_external_config_with_custom_imports \
    "tests/test_configs/test_every_config.py::test_config_trains_and_tests_one_step[lesa/mask-rcnn_lesa-r50_fpn_1x_coco.py]" \
    "tests/test_configs/test_every_config.py::test_config_trains_and_tests_one_step[la_layer/faster-rcnn_la-r50_fpn_ms-range-1x_coco.py]" \
    "tests/test_configs/test_every_config.py::test_config_trains_and_tests_one_step[external_attention/eanet_r50-d8_4xb4-80k_ade20k-512x512.py]" \
    "tests/test_configs/test_every_config.py::test_config_trains_and_tests_one_step[aa/aa-r50_8xb32-100e_in1k.py]"
