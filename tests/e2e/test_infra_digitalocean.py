"""`stagecraft infra up/down` with the digitalocean cloud, against a local stand-in of its API.

No DigitalOcean account is reachable here, so the API is the stand-in of
``stagecraft.testing.digitalocean_standin`` (the documented endpoints, shapes,
pagination, rate-limit headers and errors), and the "droplets" it hands out
have the addresses of two sandbox hosts (real sshd and dockerd): so `infra up`
really waits for SSH, records the host keys it scans, logs in with strict
checking and bootstraps the hosts (edge proxy started). A 429 in the middle is
retried; a second `up` creates nothing; `down` destroys exactly the droplets
tagged for the environment; a bad token is one clear line and exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from stagecraft.config.infra_state import (
    HostRecord,
    InfraState,
    known_hosts_path,
    read_state,
    state_path,
    write_state,
)
from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.testing import images
from stagecraft.testing.digitalocean_standin import DigitalOceanStandin

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

TOKEN = "dop_v1_" + uuid.uuid4().hex
CONFIG = """\
project: {name}
proxy: {{provider: caddy, providers: {{caddy: {{image: {caddy}}}}}}}
cloud:
  provider: digitalocean
  providers:
    digitalocean: {{region: fra1, size: s-1vcpu-1gb, ssh_keys: [512189]}}
environments:
  production:
    hosts:
      web-1: {{roles: [web]}}
      web-2: {{roles: [web]}}
    roles: {{web: [web]}}
    tls: 'off'
    secrets_provider: {{provider: env}}
"""


def _cli(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["stagecraft", "-c", str(root / "stagecraft.yml"), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)


def test_infra_up_twice_then_down_against_the_api_stand_in(
    sandbox_factory: Callable[[int], Sandbox], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(2)
    caddy = images.ensure_caddy_image()
    name = f"do{uuid.uuid4().hex[:6]}"
    root = tmp_path / "app"
    root.mkdir()
    (root / "stagecraft.yml").write_text(CONFIG.format(name=name, caddy=caddy))
    (root / "docker-compose.yml").write_text("services:\n  web: {image: busybox}\n")
    addresses = [host.address for host in sandbox.hosts]
    with DigitalOceanStandin(token=TOKEN, public_addresses=addresses) as api:
        env = {
            **os.environ,
            "DO_TOKEN": TOKEN,
            "STAGECRAFT_DIGITALOCEAN_API_URL": api.url,
            "STAGECRAFT_SSH_CONFIG": str(sandbox.ssh_config),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        stranger = api.add_droplet("stranger", tags=["web"])  # not ours: no tags of stagecraft
        other_env = api.add_droplet(
            f"{name}-staging-web-1", tags=["stagecraft", f"stagecraft-{name}-staging"]
        )

        plan = _cli(root, env, "infra", "up", "--env", "production", "--plan", "--json")
        assert plan.returncode == 0, plan.stderr
        shown = json.loads(plan.stdout)
        assert [m["name"] for m in shown["create"]] == [
            f"{name}-production-web-1",
            f"{name}-production-web-2",
        ]
        assert shown["keep"] == [] and shown["extra"] == []
        assert [r for r in api.requests if r.method == "POST"] == []

        mark = len(api.requests)
        api.throttle(1, reset_in=1.0)  # DigitalOcean's burst limit, once
        up = _cli(root, env, "infra", "up", "--env", "production")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "2 to create, 0 kept" in up.stdout
        assert up.stderr.count("host key recorded: ED25519 SHA256:") == 2, up.stderr
        assert "web-1: ready (docker" in up.stdout and "web-2: ready (docker" in up.stdout
        assert [r.status for r in api.requests[mark : mark + 2]] == [429, 200]  # then retried
        assert len([r for r in api.requests if r.method == "POST"]) == 2
        state = read_state(root, "production")
        assert state is not None
        assert sorted(r.address for r in state.hosts.values()) == sorted(addresses)
        recorded = known_hosts_path(root, "production").read_text().splitlines()
        assert sorted(line.split()[0] for line in recorded) == sorted(addresses)
        assert TOKEN not in up.stdout + up.stderr

        # The recorded addresses and keys are what every other command uses.
        again = _cli(root, env, "infra", "up", "--env", "production")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "0 to create, 2 kept" in again.stdout
        assert len([r for r in api.requests if r.method == "POST"]) == 2
        assert "host key recorded" not in again.stderr  # known keys are never scanned again
        bootstrap = _cli(root, env, "hosts", "bootstrap", "--env", "production")
        assert bootstrap.returncode == 0, bootstrap.stderr
        assert "proxy already running" in bootstrap.stdout

        refused = _cli(root, env, "infra", "down", "--env", "production")
        assert refused.returncode == 2, refused.stderr
        assert "without confirmation" in refused.stderr
        assert f"destroy {name}-production-web-1" in refused.stdout
        assert len(api.droplets()) == 4

        down = _cli(root, env, "infra", "down", "--env", "production", "--yes")
        assert down.returncode == 0, down.stdout + down.stderr
        left = sorted(d["name"] for d in api.droplets())
        assert left == sorted([stranger["name"], other_env["name"]])
        assert not state_path(root, "production").exists()
        assert not known_hosts_path(root, "production").exists()
        # A state file whose servers the cloud no longer lists: --plan keeps it, down removes it.
        write_state(
            root,
            InfraState("production", "digitalocean", {"web-1": HostRecord("1", "x", addresses[0])}),
        )
        gone = _cli(root, env, "infra", "down", "--env", "production", "--plan")
        assert gone.returncode == 0 and "nothing to destroy" in gone.stdout
        assert state_path(root, "production").exists()
        forgotten = _cli(root, env, "infra", "down", "--env", "production", "--yes")
        assert forgotten.returncode == 0, forgotten.stderr
        assert not state_path(root, "production").exists()

        bad = _cli(root, {**env, "DO_TOKEN": "wrong-token"}, "infra", "up", "--env", "production")
        assert bad.returncode == 2, bad.stderr
        errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "401" in errors[0] and "DO_TOKEN" in errors[0], bad.stderr
        assert "wrong-token" not in bad.stdout + bad.stderr and "Traceback" not in bad.stderr
