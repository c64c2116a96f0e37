# The single entry point: `make run` serves a working sandbox, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint bench lock venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(BIN)/keyhouse db upgrade
	$(BIN)/keyhouse seed --banner --demo-origin http://$(HOST):$(PORT) --demo-origin http://localhost:$(PORT)
	$(BIN)/keyhouse serve --with-worker --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check -q src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# The Node SDK tests' dependencies, from the committed lock (skipped where there is no npm).
tests/node/node_modules/.installed: tests/node/package-lock.json
	npm ci --prefix tests/node --no-audit --no-fund
	@touch $@

# pytest exits 5 when it collects nothing; that is a failure of the suite, not a pass.
# The pure domain is held at 100% branch coverage.
test: lint
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory tests/node/node_modules/.installed; fi
	$(BIN)/pytest -q --cov --cov-report=; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc
	$(BIN)/coverage report --include='*/keyhouse/domain/*' --fail-under=100

bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "bench needs wrk: apt-get install -y wrk" >&2; exit 1; }
	$(BIN)/python bench/auth_overhead.py
	$(BIN)/python bench/client_tokens.py
	$(BIN)/python bench/client_side.py
	$(BIN)/python bench/webhooks.py

# Re-resolve the lock from pyproject's direct dependencies (newest versions), then reinstall.
lock:
	rm -rf /tmp/keyhouse-lock && $(PYTHON) -m venv /tmp/keyhouse-lock
	/tmp/keyhouse-lock/bin/pip install -q -e '.[dev]'
	{ echo "# The lock: exact versions of every dependency, direct and indirect. Regenerate with 'make lock'."; \
	  /tmp/keyhouse-lock/bin/pip freeze | grep -v '^-e\|^keyhouse'; } > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
