# Sculpt: `make demo` and `make test` set themselves up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build that lies on this machine's disk; on a GPU host: make install TORCH_SPEC="torch==2.13.0" PIP_EXTRA="--index-url ..."
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install chromium demo demo-tiny serve worker test test-fast bench lint typecheck clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[worker,real,dev]"
	$(MAKE) --no-print-directory chromium
	touch $(STAMP)

# Debian's Chromium for the dashboard's browser test (Playwright drives it; its own browsers are never
# downloaded). Only root can install it; elsewhere the browser test skips and says why.
chromium:
	@test -x /usr/bin/chromium \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	       && { apt-get install -y -q chromium >/dev/null 2>&1 \
	            || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; }; } \
	  || echo "note: no Chromium installed (needs root and apt-get); the dashboard browser test will be skipped"

# The method on a real model: SmolLM2-135M-Instruct, default strategy beside plain full fine-tuning.
demo: install
	$(BIN)/sculpt demo

# The product on a tiny model built in code (no download).
demo-tiny: install
	$(BIN)/sculpt demo --tiny

serve: install
	$(BIN)/sculpt serve

worker: install
	$(BIN)/sculpt worker

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m bench.step_overhead
	$(BIN)/python -m bench.continual

lint: install
	$(BIN)/ruff check app worker tests bench migrations

# mypy over app and worker (pyproject [tool.mypy]); .ci/run runs it after lint.
typecheck: install
	$(BIN)/mypy

clean:
	rm -rf .sculpt test-artifacts .pytest_cache
