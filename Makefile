# All set-up happens in scripts/setup.sh (idempotent); every target runs it first.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-unit lint typecheck bench clean

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

bench: setup
	$(BIN)/python bench/cli_startup.py

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov coverage.xml
