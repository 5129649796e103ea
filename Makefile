# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench cluster lock clean

# Exact versions, hash-checked, from requirements.lock (as the image installs them); then the project.
$(BIN)/cheqpoint: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.test-deps: $(BIN)/cheqpoint
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/cheqpoint
	$(BIN)/cheqpoint db upgrade
	$(BIN)/cheqpoint serve --host $(HOST) --port $(PORT)

test: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/pytest -q

# compose.yaml's topology without Docker: two API replicas behind $(PORT) and a worker.
# Needs DATABASE_URL=postgresql+asyncpg://… (migrated on start).
cluster: $(BIN)/cheqpoint
	$(BIN)/cheqpoint cluster --host $(HOST) --port $(PORT)

# Re-pin requirements.lock after changing dependencies in pyproject.toml.
lock:
	$(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet pip-tools
	.lock-venv/bin/pip-compile --quiet --generate-hashes --strip-extras --extra postgres --no-emit-index-url \
		--no-emit-find-links -o requirements.lock pyproject.toml
	rm -rf .lock-venv

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .

# The performance table (docs/performance.md). SOAK=600 for the ten-minute soak; BENCH_ARGS for more.
SOAK ?= 20
bench: $(VENV)/.test-deps
	command -v wrk >/dev/null || (command -v apt-get >/dev/null && apt-get install -y -q wrk) || true
	$(BIN)/python bench/run.py --soak $(SOAK) $(BENCH_ARGS)
	$(BIN)/python bench/flood.py

clean:
	rm -rf $(VENV) cheqpoint.db cheqpoint.db-wal cheqpoint.db-shm
