# The two commands: `make run` and `make test`. Both set up what they need and are quick the second time.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
TEST_DATA_DIR := $(CURDIR)/var/test

.PHONY: run test deps test-deps browser-deps

run: deps
	$(PY) manage.py serve

test: test-deps
	rm -rf $(TEST_DATA_DIR)
	DLSTUDIO_DATA_DIR=$(TEST_DATA_DIR) $(PY) -m pytest $(PYTEST_ARGS)

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
