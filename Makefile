# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench clean

$(BIN)/cheqpoint: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
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

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .

bench: $(VENV)/.test-deps
	command -v wrk >/dev/null || (command -v apt-get >/dev/null && apt-get install -y -q wrk) || true
	$(BIN)/python bench/intake.py

clean:
	rm -rf $(VENV) cheqpoint.db cheqpoint.db-wal cheqpoint.db-shm
