"""The release ledger on real sandbox hosts: append, concurrent appends, merge, lost host, CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from stagecraft.cli.main import run
from stagecraft.deploy.state import ledger
from stagecraft.deploy.state.layout import ledger_path
from stagecraft.deploy.state.ledger import LedgerRecord, ServiceRecord
from stagecraft.errors import ExitCode
from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.runtime.fanout import fan_out

pytestmark = [pytest.mark.integration, pytest.mark.sandbox]

PROJECT = "ledgertest"


def record(release: str, host: str, outcome: str = "success", n: int = 0) -> LedgerRecord:
    return LedgerRecord(
        release=release,
        version=release.rsplit("-", 1)[-1],
        env="staging",
        host=host,
        started_at=f"2026-11-23T10:00:{n:02d}+00:00",
        finished_at="2026-11-23T10:01:00+00:00",
        by="alice@laptop",
        command="deploy",
        outcome=outcome,
        services={
            "api": ServiceRecord(f"{PROJECT}/api:{release[-4:]}", "sha256:ab", "cf1", outcome)
        },
    )


def test_ledger_round_trip_across_three_hosts_with_one_stopped(
    sandbox_factory: Callable[[int], Sandbox],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = sandbox_factory(3)
    hosts = [sandbox.ssh_host(h.name) for h in sandbox.hosts]
    h1, h2, h3 = hosts
    first, second = "20261123T100000Z-aaaa", "20261124T100000Z-bbbb"
    for host in hosts:
        ledger.append(host, PROJECT, record(first, host.name))
    ledger.append(h1, PROJECT, record(second, "h1"))
    ledger.append(h3, PROJECT, record(second, "h3", outcome="failed"))

    # A crash left half a line on h2: reading skips it, the next append mends it.
    path = ledger_path(PROJECT, "staging")
    h2.run(["sh", "-c", f"printf '%s' '{{\"release\": \"2026' >> {path}"])
    ledger.append(h2, PROJECT, record(second, "h2"))
    assert [r.release for r in ledger.read(h2, PROJECT, "staging")] == [first, second]

    # Concurrent appends never interleave.
    result = fan_out(
        list(range(12)),
        lambda n: ledger.append(h1, PROJECT, record(f"20261125T1000{n:02d}Z-cccc", "h1", n=n)),
        name=str,
        parallel=12,
    )
    result.raise_for_failures()
    on_h1 = ledger.read(h1, PROJECT, "staging")
    assert len(on_h1) == 14

    found = ledger.history(hosts, PROJECT, "staging")
    assert found.unreachable == {}
    by_id = {r.id: r for r in found.releases}
    assert by_id[first].outcome == "success" and list(by_id[first].hosts) == ["h1", "h2", "h3"]
    assert by_id[second].outcome == "failed"

    sandbox.stop_host("h3")
    found = ledger.history(hosts, PROJECT, "staging")
    assert list(found.unreachable) == ["h3"] and "cannot connect" in found.unreachable["h3"]
    by_id = {r.id: r for r in found.releases}
    assert list(by_id[second].hosts) == ["h1", "h2"] and by_id[second].outcome == "success"
    assert ledger.previous_successful(found.releases, current=second) == by_id[first]

    _check_cli(sandbox, tmp_path, monkeypatch, capsys, (first, second))


def _check_cli(
    sandbox: Sandbox,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ids: tuple[str, str],
) -> None:
    """docs/releases.md: `releases` and `releases show` with one host down."""
    first, second = ids
    hosts = "".join(
        f"      {h.name}: {{address: {h.address}, roles: [web]}}\n" for h in sandbox.hosts
    )
    (root / "compose.yaml").write_text("services:\n  api:\n    image: busybox\n")
    (root / "stagecraft.yml").write_text(
        f"project: {PROJECT}\nenvironments:\n  staging:\n    hosts:\n{hosts}"
        "    roles: {web: [api]}\n"
    )
    monkeypatch.chdir(root)
    monkeypatch.setenv("STAGECRAFT_SSH_CONFIG", str(sandbox.ssh_config))

    # h3 is stopped: the others' releases are listed, and the exit code says a host was not read
    assert run(["releases", "--env", "staging"]) == ExitCode.UNREACHABLE
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "VERSION", "WHEN", "WHO", "COMMAND", "OUTCOME", "HOSTS"]
    row = next(line for line in lines if line.startswith(second))
    assert row.split()[1:] == [
        "bbbb",
        "2026-11-23T10:00:00+00:00",
        "alice@laptop",
        "deploy",
        "success",
        "h1,h2",
    ]
    assert "warning: h3: ledger not read: cannot connect" in err

    assert run(["releases", "show", "19990101", "--env", "staging"]) == ExitCode.USAGE
    capsys.readouterr()
    assert run(["releases", "show", second, "--env", "staging"]) == ExitCode.UNREACHABLE
    out = capsys.readouterr().out
    assert f"release {second}: success" in out
    assert "  h1: success, 60.0s" in out
    assert f"    api: success {PROJECT}/api:bbbb config cf1" in out

    assert run(["--json", "releases", "--env", "staging"]) == ExitCode.UNREACHABLE
    data = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in data["releases"]][-2:] == [second, first]
    assert list(data["unreachable"]) == ["h3"]
