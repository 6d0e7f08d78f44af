# Every target a user or CI runs. `make help` lists them.
# Python: the Lambda runtime's version (3.12), found by scripts/find-python.sh; PYTHON=... overrides.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --warn-undefined-variables

PYTHON ?=
BUILD_DIR ?= build
VENV := .venv
VENV_PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
PYTEST_ARGS ?=
CI ?=

# Resolved lazily so `make help` works on a machine without Python 3.12.
FIND_PYTHON = PYTHON="$(PYTHON)" scripts/find-python.sh 3.12

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ---------------------------------------------------------------------------
# Environments: created once, refreshed when a pin file changes
# ---------------------------------------------------------------------------
$(VENV)/.installed: requirements/dev.txt functions/requirements.txt
	@py="$$($(FIND_PYTHON))"; \
	if [ ! -x "$(VENV_PY)" ] || ! "$(VENV_PY)" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then \
	  echo "Creating $(VENV) with $$py"; rm -rf "$(VENV)"; "$$py" -m venv "$(VENV)"; \
	fi
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	@touch $@

$(CHECKOV_VENV)/.installed: requirements/checkov.txt
	@# checkov pins its own boto3, so it lives in a venv of its own.
	@py="$$($(FIND_PYTHON))"; [ -x "$(CHECKOV_VENV)/bin/python" ] || "$$py" -m venv "$(CHECKOV_VENV)"
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/checkov.txt
	@touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create or refresh the development virtual environment (.venv)

# ---------------------------------------------------------------------------
# Quality
# ---------------------------------------------------------------------------
.PHONY: fmt
fmt: $(VENV)/.installed ## Format Python (ruff) and Terraform (terraform fmt)
	$(VENV_PY) -m ruff format .
	$(VENV_PY) -m ruff check --fix .
	terraform fmt -recursive

.PHONY: lint
lint: $(VENV)/.installed $(CHECKOV_VENV)/.installed ## Lint: ruff, terraform fmt -check, checkov, and tflint when installed
	$(VENV_PY) -m ruff check .
	$(VENV_PY) -m ruff format --check .
	terraform fmt -check -recursive
	$(CHECKOV_VENV)/bin/checkov -d . --framework terraform --quiet --compact
	@if command -v tflint >/dev/null 2>&1; then \
	  tflint --init && tflint --recursive --config "$(CURDIR)/.tflint.hcl"; \
	else echo "tflint not installed: skipped (https://github.com/terraform-linters/tflint)"; fi

# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------
.PHONY: test
test: $(VENV)/.installed $(CHECKOV_VENV)/.installed package ## Run the whole suite: ruff, unit, functional, packaging, Terraform on moto, checkov, local stack
	$(VENV_PY) -m ruff check .
	$(VENV_PY) -m ruff format --check .
	@# pytest exits 5 when it collects nothing: a suite that silently ran no test is a failure.
	@rc=0; CHECKOV="$(CURDIR)/$(CHECKOV_VENV)/bin/checkov" BUILD_DIR="$(BUILD_DIR)" \
	  $(VENV_PY) -m pytest $(if $(CI),-p no:cacheprovider,) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

.PHONY: test-fast
test-fast: $(VENV)/.installed ## Unit and functional tests only (seconds)
	$(VENV_PY) -m pytest tests/unit tests/functional $(PYTEST_ARGS)

# ---------------------------------------------------------------------------
# Packaging (scripts/package.py)
# ---------------------------------------------------------------------------
.PHONY: package
package: $(VENV)/.installed ## Build the Lambda artifacts into build/ (function zips and dependency layer)
	$(VENV_PY) scripts/package.py --build-dir $(BUILD_DIR)

.PHONY: clean
clean: ## Remove build outputs
	rm -rf $(BUILD_DIR)

# ---------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------
.PHONY: bench
bench: package ## Print cold-start, warm-overhead, size and build-time figures
	$(VENV_PY) scripts/bench.py --build-dir $(BUILD_DIR)

# ---------------------------------------------------------------------------
# Documentation
# ---------------------------------------------------------------------------
.PHONY: docs
docs: $(VENV)/.installed ## Regenerate the inputs/outputs tables in the READMEs from the .tf files
	$(VENV_PY) scripts/tf_docs.py --write

# ---------------------------------------------------------------------------
# Local stack (scripts/local)
# ---------------------------------------------------------------------------
.PHONY: local
local: $(VENV)/.installed package ## Run the whole app on this machine: moto + terraform apply, local model, local function URLs
	$(VENV_PY) -m local.up

.PHONY: local-down
local-down: $(VENV)/.installed ## Stop what `make local` started and destroy its stack
	$(VENV_PY) -m local.down
