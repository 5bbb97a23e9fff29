#!/usr/bin/env bash
# The whole suite: lint, format, types, layer contracts, features registry, then
# unit + integration + e2e tests with coverage gates. Assumes scripts/setup.sh ran.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${STAGECRAFT_VENV:-$ROOT/.venv}/bin"
export PATH="$BIN:$PATH"

step() { printf '\n== %s\n' "$*" >&2; }

step "ruff"
ruff check src tests bench
ruff format --check src tests bench
step "mypy (strict)"
mypy
step "import-linter (layer contracts)"
lint-imports
step "pytest with coverage"
rm -f .coverage .coverage.*
# The browser tests' screenshots (tests/browser): kept as CI artifacts.
export STAGECRAFT_ARTIFACTS="${STAGECRAFT_ARTIFACTS:-$ROOT/artifacts/screenshots}"
export COVERAGE_FILE="$ROOT/.coverage"
set +e
pytest --cov --cov-report= -p no:cacheprovider "$@"
status=$?
set -e
if [[ $status -ne 0 ]]; then
  exit $status
fi
step "coverage gates"
coverage combine -q >/dev/null 2>&1 || true
python scripts/coverage_gate.py
