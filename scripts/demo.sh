#!/usr/bin/env bash
# The main job, for now: check this machine and validate the minimal example.
# (Replaced by `stagecraft dev` on the quickstart once the dev environment lands.)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${STAGECRAFT_VENV:-$ROOT/.venv}/bin"
cd "$ROOT/examples/minimal"
"$BIN/stagecraft" doctor
"$BIN/stagecraft" config validate
