# All set-up happens in scripts/setup.sh (idempotent); every target runs it first.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-unit lint typecheck bench bench-all clean

setup:
	bash scripts/setup.sh

## The main job: check the machine and validate the example project.
demo: setup
	bash scripts/demo.sh

## The whole test suite, with lint, types, layer contracts and coverage gates.
test: setup
	bash scripts/test.sh

test-unit: setup
	$(BIN)/pytest tests/unit -q

lint:
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy

## Quick figures (no sandbox hosts); bench-all also runs the sandbox benches (root, ~15 min).
bench: setup
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/plan_large.py

bench-all: bench
	$(BIN)/python bench/dev_startup.py
	$(BIN)/python bench/deploy_fanout.py
	$(BIN)/python bench/zero_downtime.py
	$(BIN)/python bench/zero_downtime_switch.py

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov coverage.xml
