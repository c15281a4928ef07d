# jobjournal: `make demo` and `make test` work on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint faults bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python deploy/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

BENCH_JOBS ?= 100000

BENCH_LAYOUT ?= standalone
BENCH_SCALE_JOBS ?= 20000

bench: $(STAMP)
ifeq ($(BENCH_LAYOUT),cluster)
	$(BIN)/python -m bench.scale_out --jobs $(BENCH_SCALE_JOBS)
else
	$(BIN)/python -m bench.run --jobs $(BENCH_JOBS)
endif

faults: $(STAMP)
	JOBJOURNAL_FAULT_ROUNDS=25 $(BIN)/python -m pytest -q tests/faults

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
