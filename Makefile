# Two commands on a fresh machine:
#   make lab   - install into .venv and start JupyterLab with the job server
#   make test  - install the test dependencies into .venv and run the whole test suite

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# JupyterLab refuses to run as root unless told to (containers and CI machines do)
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

lab: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[lab]'
	$(BIN)/jupyter lab $(ROOT_FLAG) --JobServerApp.state_dir=$(CURDIR)/.jobserver $(LAB_ARGS)

test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(BIN)/python
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	cd benchmarks && for b in bench_*.py; do ../$(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache benchmarks/results
