# The two commands: `make run` and `make test`; and, for developers, `make test-fast` and `make lint`.
# Every target sets up what it needs and is quick the second time.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
TEST_DATA_DIR := $(CURDIR)/var/test
FAST_DATA_DIR := $(CURDIR)/var/test-fast

.PHONY: run test test-fast lint deps test-deps browser-deps gpu-wheels version-file

run: deps
	$(PY) manage.py serve

UNIT := -m "not integration and not browser"
# pytest's exit status 5 is "no test selected": PYTEST_ARGS may name tests of one kind only.
SOME := || [ $$? -eq 5 ]

# The unit tests on two processes (pytest-xdist), then the tests with real processes, also on two: each
# pytest process has its own test database, Redis, Celery workers and Chromium, and runs a file's tests
# together (--dist loadfile), so a file's fixtures start once.
test: test-deps
	rm -rf $(TEST_DATA_DIR)
	DLSTUDIO_DATA_DIR=$(TEST_DATA_DIR) $(PY) -m pytest $(UNIT) -n 2 $(PYTEST_ARGS) $(SOME)
	DLSTUDIO_DATA_DIR=$(TEST_DATA_DIR) $(PY) -m pytest -m "integration or browser" -n 2 --dist loadfile $(PYTEST_ARGS) $(SOME)

# The unit tests alone: no Redis, Celery worker or browser is started.
test-fast: $(VENV)/.deps-test
	rm -rf $(FAST_DATA_DIR)
	DLSTUDIO_DATA_DIR=$(FAST_DATA_DIR) $(PY) -m pytest $(UNIT) -n 2 $(PYTEST_ARGS) $(SOME)

# ruff, then the import contracts of .importlinter (docs/ARCHITECTURE.md says what each one keeps).
lint: $(VENV)/.deps-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

deps: $(VENV)/.deps

test-deps: $(VENV)/.deps-test browser-deps
	@bin/apt-ensure redis-server redis-server

browser-deps:
	@bin/apt-ensure chromium chromium

$(PY):
	$(PYTHON) -m venv $(VENV)

# Stamp files: pip runs again only when a requirements file changes.
$(VENV)/.deps: requirements.txt | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.deps-test: requirements-test.txt $(VENV)/.deps
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-test.txt
	touch $@

# What bench/gpu_check.sh installs offline on a GPU machine that has only torch, torchvision, numpy and
# Pillow: captum and what it imports, as wheels for Python 3.12 on x86_64 (docs/PERFORMANCE.md, "GPU").
GPU_WHEELS := captum==0.9.0 matplotlib contourpy cycler fonttools kiwisolver packaging pyparsing python-dateutil six tqdm
gpu-wheels: $(VENV)/.deps
	rm -rf bench/wheels
	$(PY) -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d bench/wheels $(GPU_WHEELS)

# The code version for a copy without .git (an image, a package): run before copying or packaging.
version-file:
	git describe --always --dirty > dlstudio/BUILD_VERSION
