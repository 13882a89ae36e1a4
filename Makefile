# Two commands on a fresh machine:
#   make lab   - install into .venv and start JupyterLab with the job server
#   make test  - install the test dependencies into .venv and run the whole test suite

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# schemathesis fuzzes the REST API from its own environment: its pins clash with the project's
FUZZ_VENV ?= .venv-fuzz
# JupyterLab refuses to run as root unless told to (containers and CI machines do)
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# jlpm, jupyter-builder and node tools run with the virtual environment first on the PATH
WITH_VENV := PATH="$(CURDIR)/$(BIN):$$PATH"
LABEXT := labextension

.PHONY: lab test lint bench clean labextension mongo-server fuzz-env

# the local MongoDB wire-protocol server the MongoDB store is tested against (mongoeco,
# which needs Python 3.13, in an environment of its own); CI=true fails without Python 3.13,
# elsewhere the MongoDB tests are skipped with the reason
MONGO_VENV ?= .venv-mongo
PYTHON313 ?= python3.13

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

lab: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[lab]'
	$(MAKE) labextension
	$(BIN)/jupyter lab $(ROOT_FLAG) --JobServerApp.state_dir=$(CURDIR)/.jobserver $(LAB_ARGS)

# build the JupyterLab extension from labextension/ and link it into the environment, so
# that JupyterLab serves what was just built (an editable install copies it once)
labextension: $(BIN)/python
	cd $(LABEXT) && $(WITH_VENV) jlpm install && $(WITH_VENV) jlpm build
	$(WITH_VENV) jupyter-builder develop --overwrite .

mongo-server:
	@if [ -x $(MONGO_VENV)/bin/python ] && $(MONGO_VENV)/bin/python -c 'import mongoeco' 2>/dev/null; then :; \
	elif PYENV_VERSION=3.13.0 $(PYTHON313) -c '' 2>/dev/null; then \
	  PYENV_VERSION=3.13.0 $(PYTHON313) -m venv $(MONGO_VENV) && \
	  $(MONGO_VENV)/bin/pip install --quiet 'mongoeco>=4.11,<5' 'pymongo>=4.9,<4.19'; \
	elif [ "$$CI" = true ]; then \
	  echo "mongo-server: $(PYTHON313) is missing; the MongoDB store tests need it" >&2; exit 1; \
	else \
	  echo "mongo-server: no $(PYTHON313) here; the MongoDB store tests will be skipped" >&2; \
	fi

$(FUZZ_VENV)/bin/schemathesis:
	$(PYTHON) -m venv $(FUZZ_VENV)
	$(FUZZ_VENV)/bin/pip install --quiet 'schemathesis>=4,<5'

fuzz-env: $(FUZZ_VENV)/bin/schemathesis

test: $(BIN)/python mongo-server fuzz-env
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd $(LABEXT) && $(WITH_VENV) jlpm install
	cd $(LABEXT) && $(WITH_VENV) jlpm prettier:check
	cd $(LABEXT) && $(WITH_VENV) jlpm eslint:check
	cd $(LABEXT) && $(WITH_VENV) jlpm typecheck
	$(MAKE) labextension
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(BIN)/python
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	cd $(LABEXT) && $(WITH_VENV) jlpm install && $(WITH_VENV) jlpm lint

bench: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	cd benchmarks && for b in bench_*.py; do ../$(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(MONGO_VENV) $(FUZZ_VENV) build dist *.egg-info .pytest_cache .ruff_cache benchmarks/results test-artifacts
	rm -rf $(LABEXT)/node_modules $(LABEXT)/lib $(LABEXT)/tsconfig.tsbuildinfo jupyter_jobserver/labextension
