# mmattn: `make demo` and `make test` do all the set-up on a fresh machine.
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: install demo test test-fast data clean-venv

install:
	@bash tools/misc/install_env.sh

data: install
	$(PY) tools/misc/make_toy_data.py --out data/toy

demo: install
	$(PY) tools/misc/demo.py

# Everything, end-to-end runs of every config included (pytest -m "not slow" for the quick part).
test: install
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q -ra -m "not slow" $(PYTEST_ARGS)

clean-venv:
	rm -rf .venv
