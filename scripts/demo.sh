#!/usr/bin/env bash
# The main job: `stagecraft dev` on examples/quickstart — PostgreSQL from compose,
# migrations, the API and the Vite frontend with hot reload, all behind HTTPS at
# https://app.quickstart.localhost and https://api.quickstart.localhost.
# Ctrl-C stops everything. Assumes scripts/setup.sh ran (`make demo` does both).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${STAGECRAFT_VENV:-$ROOT/.venv}/bin"
cd "$ROOT/examples/quickstart"
for dir in api web; do
  (cd "$dir" && npm install --no-audit --no-fund --loglevel error)
done
# No image registry is reachable on these machines: unless POSTGRES_IMAGE names an
# image you have, build the local PostgreSQL stand-in (once; reused afterwards).
export POSTGRES_IMAGE="${POSTGRES_IMAGE:-$("$BIN/python" -m stagecraft.testing.images postgres)}"
"$BIN/stagecraft" doctor --quiet
exec "$BIN/stagecraft" dev "$@"
