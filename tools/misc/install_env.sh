#!/usr/bin/env bash
# Creates .venv and installs the pinned OpenMMLab 3.x stack plus mmattn (editable).
# Called by `make install`; idempotent: a stamp holding the hash of the requirement files
# makes a second call a no-op. pip's wheel cache is kept, so mmcv's 15-45 minute source build
# happens once per machine and later installs take seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
PY_BOOT="${PYTHON:-python3.11}"
LOGDIR="$ROOT/.install-logs"
STAMP="$VENV/.mmattn-install-stamp"
mkdir -p "$LOGDIR"

hash_inputs() {
    cat requirements/*.txt setup.py tools/misc/install_env.sh 2>/dev/null | sha256sum | cut -d' ' -f1
}
WANT="$(hash_inputs)"
# The compiled kernels (mmattn/ops/csrc -> mmattn/_ext*.so) have a stamp of their own: a change
# to a kernel rebuilds only them (about 2 minutes), not the environment.
EXT_STAMP="$VENV/.mmattn-ext-stamp"
hash_ext() {
    cat mmattn/ops/csrc/* setup.py 2>/dev/null | sha256sum | cut -d' ' -f1
}
EXT_WANT="$(hash_ext)"
ext_status() {
    "$VENV/bin/python" -c "from mmattn.ops import ext_status; print('[install]   ' + ext_status())"
}
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$VENV/bin/python" ]]; then
    if [[ -f "$EXT_STAMP" && "$(cat "$EXT_STAMP")" == "$EXT_WANT" ]] && ls mmattn/_ext*.so >/dev/null 2>&1; then
        echo "[install] .venv is up to date (stamp $STAMP)"
        exit 0
    fi
    echo "[install] compiled kernels changed: rebuilding mmattn._ext"
    LOG="$LOGDIR/mmattn-ext.log"
    "$VENV/bin/python" setup.py build_ext --inplace >"$LOG" 2>&1 || { tail -n 40 "$LOG" >&2; exit 1; }
    ext_status
    echo "$EXT_WANT" > "$EXT_STAMP"
    exit 0
fi

STAGES=8
stage=0
trap 'echo "[install] FAILED at line $LINENO (stage $stage/$STAGES); logs in $LOGDIR" >&2' ERR
t_start=$SECONDS
say() { stage=$((stage + 1)); echo "[install] stage $stage/$STAGES: $* (t=$((SECONDS - t_start))s)"; }

# Runs a command with its output in a log file; prints a heartbeat every 60 s while it runs and
# the end of the log if it fails.
run_logged() {
    local name="$1"; shift
    local log="$LOGDIR/$name.log"
    local t0=$SECONDS
    "$@" >"$log" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        if kill -0 "$pid" 2>/dev/null; then
            # ninja prints [done/total] per compiled file during mmcv's build
            local progress
            progress=$( (grep -oE '^ *\[[0-9]+/[0-9]+\]' "$log" 2>/dev/null || true) \
                       | tail -n 1 | tr -d ' ')
            echo "[install]   ... $name still running, $((SECONDS - t0))s elapsed" \
                 "${progress:+(compiled ${progress} files)}; log: $log"
        fi
    done
    if ! wait "$pid"; then
        echo "[install] FAILED: $name (log: $log). Last 60 lines:" >&2
        tail -n 60 "$log" >&2
        exit 1
    fi
    echo "[install]   $name done in $((SECONDS - t0))s"
}

C="-c $ROOT/requirements/constraints.txt"

say "virtual environment $VENV ($PY_BOOT)"
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PY_BOOT" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"

say "build tools (requirements/build.txt)"
run_logged build-tools $PIP install $C -U pip -r requirements/build.txt

say "torch (CPU wheel, requirements/torch.txt)"
run_logged torch $PIP install $C -r requirements/torch.txt

say "mmengine and runtime dependencies"
run_logged runtime $PIP install $C mmengine==0.10.7 -r requirements/runtime.txt

say "mmcv 2.1.0 with ops, built from source unless pip's wheel cache has it"
# MMCV_WITH_OPS builds the CPU ops (DCN, RoIAlign, NMS, ...). --no-build-isolation lets the build
# see the installed torch and setuptools<80 instead of pulling a fresh (CUDA) torch.
run_logged mmcv env MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    $PIP install $C -v --no-build-isolation mmcv==2.1.0

say "mmdet, mmsegmentation, mmpretrain"
run_logged mmlibs $PIP install $C mmdet==3.3.0 mmsegmentation==1.2.2 mmpretrain==1.2.0

say "openmim (without its openxlab chain), test and export tools"
run_logged mim $PIP install $C -r requirements/mim.txt -r requirements/tests.txt \
    -r requirements/deploy.txt
run_logged mim-nodeps $PIP install $C --no-deps openmim==0.3.9

say "mmattn (editable)"
# An egg-link to this checkout (`setup.py develop`, which setuptools<80 still has): the
# distribution's location is then the checkout, where `mim search mmattn` finds
# mmattn/.mim/model-index.yml. pip's PEP 660 editable install keeps the metadata in
# site-packages, where mim looks for the package and does not find it.
run_logged mmattn-uninstall $PIP uninstall -y mmattn
run_logged mmattn "$VENV/bin/python" setup.py develop --no-deps

"$VENV/bin/python" - <<'PY'
import importlib, sys
for name in ["torch", "mmengine", "mmcv", "mmdet", "mmseg", "mmpretrain", "setuptools"]:
    if name == "mmpretrain":
        continue  # imported through mmattn's torchvision shim; checked by the tests
    m = importlib.import_module(name)
    print(f"[install]   {name} {m.__version__}")
from mmcv.ops import nms  # the compiled ops must be there
import pkg_resources  # noqa: F401  (setuptools<80)
PY
ext_status
echo "$WANT" > "$STAMP"
echo "$EXT_WANT" > "$EXT_STAMP"
echo "[install] done in $((SECONDS - t_start))s"
