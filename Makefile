# mmattn: `make demo` and `make test` do all the set-up on a fresh machine.
PY := .venv/bin/python
PYTEST_ARGS ?=
# Two pytest workers with one torch thread each use the 2 cores better than one worker with two
# threads (most tests run many small ops); TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS))

.PHONY: install demo test test-fast data clean-venv

install:
	@bash tools/misc/install_env.sh

data: install
	$(PY) tools/misc/make_toy_data.py --out data/toy

demo: install
	$(PY) tools/misc/demo.py

# Everything, end-to-end runs of every config included (pytest -m "not slow" for the quick part).
test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -ra --durations=25 $(XDIST) $(PYTEST_ARGS)

test-fast: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -ra -m "not slow" $(XDIST) $(PYTEST_ARGS)

clean-venv:
	rm -rf .venv
