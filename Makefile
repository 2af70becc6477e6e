# graphtrain: two commands set everything up on a fresh machine (Python >= 3.10 with venv):
#
#   make demo    runs the main job (see README)
#   make test    runs the test suite
#
# Both create ./.venv on first use and install graphtrain with pinned CPU torch into it.
#
# torch: PyPI's torch==2.13.0 for Linux x86-64 is the CUDA build (with its nvidia-* wheels, a few GB);
# the CPU build (2.13.0+cpu) is on PyTorch's index, passed to pip as an extra index so that it wins
# (a local version sorts above the plain one). `make TORCH_INDEX=` installs whatever the configured
# indexes give (e.g. a CUDA build from PyPI, or a local wheel mirror's build). Where the index's host
# does not resolve (a machine that reaches only a package mirror), it is left out rather than retried.
PYTHON ?= python3
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(shell $(PYTHON) -c "import socket, sys; socket.getaddrinfo(sys.argv[1].split('/')[2], 443); print(sys.argv[1])" $(TORCH_CPU_INDEX) 2>/dev/null)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.graphtrain-installed
# the suite in one process per core, whole test files to a process (their module fixtures built once):
# 577 s against 1367 s in one process on the 2-core machine (2026-12-07)
PYTEST_ARGS ?= -n auto --dist loadfile
DEMO_ARGS ?= --out demo-output --force

.PHONY: install test demo clean-venv

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e '.[all,test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/graphtrain demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
