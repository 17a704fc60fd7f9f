# The two commands the README promises work on a fresh machine: `make test`, `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy --strict src/agentloop

test: lint
	$(BIN)/python -m pytest

# The main job on the bundled example, the way a user with an activated venv runs it.
# detect exits 1 because the example has failures; that is the point of the demo.
demo: $(STAMP)
	cd examples/shop && PATH="$(CURDIR)/$(BIN):$$PATH" agentloop detect; \
	  code=$$?; [ $$code -le 1 ] || exit $$code

bench: $(STAMP)
	$(BIN)/python benchmarks/parse_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
