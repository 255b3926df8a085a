# kkt-hil: build, tests and the Allure HTML report.
#
#   make setup    .venv (Python >= 3.11, `pip install -e '.[dev]'`) + Allure 3 CLI (`npm ci` into ./node_modules)
#                 + .venv-labgrid (labgrid for `--kkt labgrid:PLACE`: its pyserial fork cannot share .venv)
#   make test     lint (ruff check, ruff format --check, mypy), then the unit/integration tests:
#                 pytest tests -q -n 2 (fails on a lint finding, a failing test, AND when no test ran)
#   make lint     only the linters
#   make report   main job: the scenario suite on all emulators + the HTML report (`kkt-hil run`);
#                 `make suite` is the same.  Extra arguments: make report ARGS='...'
#   make clean    generated reports and caches;  make distclean  also .venv, .venv-labgrid and node_modules
#
# Every target is idempotent: setup is stamped on pyproject.toml / package-lock.json, so a second
# `make setup` (and the setup step of `make test`) takes well under a second.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV       := .venv
PY         := $(VENV)/bin/python
PY_STAMP   := $(VENV)/.kkt-hil-installed
NODE_STAMP := node_modules/.kkt-hil-installed
LABGRID_VERSION := 26.0.1
LG_VENV    := .venv-labgrid
LG_STAMP   := $(LG_VENV)/.kkt-hil-labgrid-$(LABGRID_VERSION)
# Interpreter for a new venv; override with `make setup PYTHON=/path/to/python3.x` (>= 3.11).
PYTHON     ?=
PYTEST_ARGS ?=
ARGS       ?=

.PHONY: help setup lint test suite report clean distclean

help:
	@echo "make setup      create .venv + install kkt-hil[dev] + Allure 3 CLI (npm ci) + .venv-labgrid (labgrid)"
	@echo "make test       lint, then run tests/ (pytest -q -n 2); PYTEST_ARGS='...' adds arguments"
	@echo "make lint       ruff check, ruff format --check, mypy (configured in pyproject.toml)"
	@echo "make report     main job: scenario suite on all emulators + Allure HTML report (alias: suite)"
	@echo "make clean      remove generated reports and caches (distclean: also .venv, .venv-labgrid, node_modules)"

setup: $(PY_STAMP) $(NODE_STAMP) $(LG_STAMP)
	@:

$(PY_STAMP): pyproject.toml
	@ok() { "$$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }; \
	if [ -x "$(PY)" ] && ok "$(PY)"; then :; else \
	  py="$(PYTHON)"; \
	  if [ -z "$$py" ]; then py="$$(command -v python3.11 || true)"; fi; \
	  if [ -z "$$py" ] && command -v python3 >/dev/null && ok python3; then py="$$(command -v python3)"; fi; \
	  if [ -z "$$py" ] || ! ok "$$py"; then \
	    echo "make setup: need Python >= 3.11 (python3.11, or python3 >= 3.11; or PYTHON=...)" >&2; exit 1; fi; \
	  echo "setup: creating $(VENV) with $$py ($$("$$py" -V 2>&1))"; \
	  rm -rf "$(VENV)"; \
	  "$$py" -m venv "$(VENV)" || { echo "make setup: '$$py -m venv' failed (Debian: apt-get install python3-venv)" >&2; exit 1; }; \
	fi
	@echo "setup: pip install -e '.[dev]'"
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# labgrid (harness/labgrid.py runs its labgrid-client) in a venv of its own: labgrid needs
# pyserial-labgrid, a fork installing the same `serial` package as pyserial.  Made from .venv's
# Python; the stamp names the pinned version, so a new pin reinstalls and a second run does nothing.
$(LG_STAMP): | $(PY_STAMP)
	@if [ ! -x "$(LG_VENV)/bin/python" ]; then \
	  echo "setup: creating $(LG_VENV)"; \
	  $(PY) -m venv "$(LG_VENV)" || { echo "make setup: '$(PY) -m venv $(LG_VENV)' failed" >&2; exit 1; }; \
	fi
	@echo "setup: pip install labgrid==$(LABGRID_VERSION) into $(LG_VENV)"
	@$(LG_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'labgrid==$(LABGRID_VERSION)'
	@test -x $(LG_VENV)/bin/labgrid-client || { echo "make setup: no $(LG_VENV)/bin/labgrid-client" >&2; exit 1; }
	@rm -f $(LG_VENV)/.kkt-hil-labgrid-*
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "make setup: Node.js >= 20 and npm are needed for the Allure 3 CLI (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	@node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' || { \
	  echo "make setup: Node.js >= 20.19 needed for Allure 3, found $$(node --version)" >&2; exit 1; }
	@echo "setup: npm ci (Allure 3 CLI into ./node_modules)"
	@npm ci --no-audit --no-fund --loglevel=error
	@test -f node_modules/allure/cli.js || { echo "make setup: npm ci did not install node_modules/allure/cli.js" >&2; exit 1; }
	@touch $@

lint: setup
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy

# pytest exit codes: 0 ok, 1 tests failed, 2 interrupted, 3 internal error, 4 usage, 5 no tests collected.
test: setup lint
	@rc=0; $(PY) -m pytest tests -q -n 2 $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: FAILED - no test ran (pytest exit code 5)" >&2; exit 1; fi; \
	exit $$rc

report: setup
	@$(VENV)/bin/kkt-hil run $(ARGS)

suite: report

clean:
	@rm -rf reports/allure-results reports/allure-report reports/history.jsonl build dist .pytest_cache .hypothesis
	@find . -path ./$(VENV) -prune -o -path ./$(LG_VENV) -prune -o -path ./node_modules -prune -o \
	  \( -name __pycache__ -o -name '*.egg-info' \) -type d -prune -exec rm -rf {} +
	@echo "clean: done"

distclean: clean
	@rm -rf $(VENV) $(LG_VENV) node_modules
	@echo "distclean: removed $(VENV), $(LG_VENV) and node_modules"
