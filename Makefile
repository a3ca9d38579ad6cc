# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the tests need (installed by `make test` when running as root with apt-get):
# real PostgreSQL and MariaDB servers (plus psql / mariadb clients) for the export tests and benchmark.
DEB_PACKAGES ?= postgresql postgresql-client mariadb-server mariadb-client
PYTEST_ARGS ?=
# Test modules run in parallel, one worker per core (each worker starts its own emulator and
# database servers on free ports); a module's tests stay on one worker, so its fixtures are shared.
PYTEST_WORKERS ?= auto

.PHONY: demo test lint bench clean deb

demo: $(STAMP)
	$(BIN)/replicator demo

test: deb $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest -q --timeout=300 -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: $(STAMP)
	@set -e; for script in benchmarks/*.py; do \
		[ -e "$$script" ] || { echo "no benchmarks yet"; break; }; \
		echo "== $$script"; $(BIN)/python "$$script"; \
	done

# Re-install only when the package definition changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[emulator,test]'
	touch $(STAMP)

deb:
	@if [ -z "$(strip $(DEB_PACKAGES))" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "skipping Debian packages ($(DEB_PACKAGES)): needs root and apt-get"; exit 0; fi; \
	missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

# Keeps .venv (re-creating it needs the network); `rm -rf .venv` for a full reset.
clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
