# Thin aliases onto nox, the build graph (noxfile.py). On a machine without nox,
# the first target bootstraps the pinned nox and uv (pyproject.toml, group "nox")
# into .venv-nox/, which git ignores: nothing is installed globally.

PYTHON ?= python3
BOOT := .venv-nox
NOX := $(shell command -v nox 2>/dev/null || echo $(BOOT)/bin/nox)

.DEFAULT_GOAL := help
.PHONY: setup check lint format test test-fast test-course1 test-course3 test-course4 demos bench clean help

$(BOOT)/bin/nox: pyproject.toml
	$(PYTHON) -m venv $(BOOT) && $(BOOT)/bin/python -m pip install -q $$($(PYTHON) -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['dependency-groups']['nox'])") && touch $@

setup: $(NOX) ## .venv/ with the course, both wheels, the "Databricks (local)" Jupyter kernel
	$(NOX) -s setup
check: $(NOX) ## lint + every test (what CI runs)
	$(NOX) -s lint test
lint: $(NOX) ## ruff, ty, cargo fmt --check, clippy
	$(NOX) -s lint
format: $(NOX) ## rewrite sources into the project format
	$(NOX) -s format
test: $(NOX) ## Rust, Python, notebooks, labs, demos
	$(NOX) -s test
test-fast: $(NOX) ## byte-compile Python, cargo check (seconds)
	$(NOX) -s test-fast
test-course1: $(NOX) ## Course 1 notebooks and labs
	$(NOX) -s test-course1
test-course3: $(NOX) ## Course 3 notebooks, labs and demos
	$(NOX) -s test-course3
test-course4: $(NOX) ## Course 4 notebooks, labs and demos
	$(NOX) -s test-course4
demos: $(NOX) ## run every Rust demo
	$(NOX) -s demos
bench: $(NOX) ## build the release wheels, benchmark trueno against NumPy
	$(NOX) -s bench
clean: $(NOX) ## remove build/, dist/, target/ and nox virtualenvs
	$(NOX) -s clean
help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16
