# Set-up, run and test in one step each; both create .venv when it is missing and install into it what
# they need: `make run` the server's dependencies, `make test` those and the test tools (own stamps).
VENV := .venv
# Python 3.11 or newer: python3.11 when present, else python3 when it is 3.11+ (or PYTHON=/path/to/it).
PYTHON_CANDIDATES ?= python3.11 python3
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in $(PYTHON_CANDIDATES); do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
endif
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint

$(VENV)/bin/python:
	@test -n "$(PYTHON)" || { echo "nphies-facade needs Python 3.11 or newer: none of $(PYTHON_CANDIDATES) is;" \
		"install python3.11 or run make with PYTHON=/path/to/python3.11" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "nphies-facade needs" \
		"Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(TEST_STAMP) $(RUN_STAMP)

run: $(RUN_STAMP)
	$(VENV)/bin/nphies-facade serve $(ARGS)

test: $(TEST_STAMP)
	$(VENV)/bin/python -m pytest -q $(ARGS)

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
