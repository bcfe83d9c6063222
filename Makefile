# The two set-up commands of the README: `make demo` and `make test`. Each creates .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# compiled bytecode is kept (__pycache__, git-ignored): with PYTHONDONTWRITEBYTECODE set, as on this work machine,
# every pytest worker re-rewrote and compiled each test module (8 s of collection a worker) and every `fillfinish`
# child process of the tests compiled the package again
unexport PYTHONDONTWRITEBYTECODE
# the suite's command, also run by scripts/stress-test.sh (docs/testing.md); two workers, a module's tests together
PYTEST_ARGS ?= -q -p no:cacheprovider -n 2 --dist loadfile --durations=15

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

.PHONY: install demo test bench pytest-args
install: $(STAMP)

demo: $(STAMP)
	$(BIN)/fillfinish demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

pytest-args:
	@echo $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run_all.py
