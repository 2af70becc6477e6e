# graphtrain: two commands set everything up on a fresh machine (Python >= 3.10 with venv):
#
#   make demo    runs the main job (see README)
#   make test    runs the test suite
#
# Both create ./.venv on first use and install graphtrain with pinned CPU torch into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.graphtrain-installed
PYTEST_ARGS ?=
DEMO_ARGS ?= --out demo-output --force

.PHONY: install test demo clean-venv

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/graphtrain demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
