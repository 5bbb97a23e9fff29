"""Pure parts of the ops commands: status summaries, --since, log lines, ssh argv, secrets."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from stagecraft.deploy.state.containers import ContainerState, HostState
from stagecraft.errors import UsageError
from stagecraft.ops.logs import (
    LogLine,
    LogOptions,
    logs_script,
    parse_since,
    render_text,
    split_timestamp,
)
from stagecraft.ops.shell import exec_argv, ssh_argv, with_tty
from stagecraft.ops.status import (
    EnvStatus,
    HostStatus,
    format_uptime,
    parse_time,
    render_status,
    summarize_host,
    summarize_service,
)
from stagecraft.runtime.ssh import SSHHost, SSHOptions, SSHTarget

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


def _container(
    service: str,
    release: str,
    *,
    state: str = "running",
    health: str | None = None,
    started: str | None = "2026-11-24T11:55:00.000000000Z",
    name: str = "",
) -> ContainerState:
    return ContainerState(
        id=f"id-{service}-{release}-{name}",
        name=name or f"shop-production-{service}-1",
        service=service,
        release=release,
        version=release.split("-", 1)[1],
        image=f"shop/{service}:{release}",
        image_id="sha256:x",
        config_hash="h",
        kind="web",
        state=state,
        health=health,
        started_at=started,
    )


def test_service_summary_counts_replicas_of_the_serving_release() -> None:
    new = "20261124T110000Z-bbb"
    old = "20261123T110000Z-aaa"
    containers = [
        _container("web", new, health="healthy", name="a"),
        _container("web", new, health="healthy", name="b", started="2026-11-24T10:00:00Z"),
        _container("web", new, state="exited", name="c"),
        _container("web", old, name="d"),
    ]
    state = HostState("web-1", tuple(containers))
    summary = summarize_service("web", state.services["web"], NOW)
    assert (summary.release, summary.version) == (new, "bbb")
    assert (summary.running, summary.total, summary.older_running) == (2, 3, 1)
    assert summary.health == "healthy"
    assert summary.uptime == 7200.0  # the oldest running replica


@pytest.mark.parametrize(
    ("healths", "expected"),
    [
        (["healthy", "unhealthy"], "unhealthy"),
        (["healthy", "starting"], "starting"),
        ([None, None], "running"),
        (["healthy", "healthy"], "healthy"),
    ],
)
def test_health_is_the_worst_replica(healths: list[str | None], expected: str) -> None:
    containers = [
        _container("web", "20261124T110000Z-b", health=h, name=str(i))
        for i, h in enumerate(healths)
    ]
    assert summarize_service("web", containers, NOW).health == expected


def test_nothing_running_shows_the_state_and_missing_services_are_listed() -> None:
    crashed = _container("worker", "20261124T110000Z-b", state="exited")
    host = summarize_host(HostState("data-1", (crashed,)), ["db", "worker"], NOW)
    assert [(s.service, s.health, s.running, s.total) for s in host.services] == [
        ("db", "not deployed", 0, 0),
        ("worker", "exited", 0, 1),
    ]
    assert host.services[1].uptime is None


def test_render_status_lists_reachable_and_unreachable_hosts() -> None:
    web = summarize_host(
        HostState("web-1", (_container("web", "20261124T110000Z-bbb"),)), ["web"], NOW
    )
    status = EnvStatus(
        "shop",
        "production",
        (web, HostStatus("web-2", error="connection refused"), HostStatus("web-3")),
    )
    text = render_status(status)
    assert text.splitlines() == [
        "shop production",
        "HOST   SERVICE  RELEASE               VERSION  HEALTH            UPTIME  REPLICAS",
        "web-1  web      20261124T110000Z-bbb  bbb      running           5m      1/1",
        "web-2  ?        -                     -        unreachable       -       -",
        "web-3  -        -                     -        nothing deployed  -       -",
        "web-2: unreachable: connection refused",
    ]
    data = status.to_json()
    assert data["unreachable"] == ["web-2"]
    assert data["hosts"][0]["services"][0]["replicas"] == {"running": 1, "total": 1}
    assert data["hosts"][0]["services"][0]["uptime_seconds"] == 300


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (-3, "0s"),
        (42, "42s"),
        (300, "5m"),
        (3 * 3600 + 720, "3h12m"),
        (187200, "2d4h"),
    ],
)
def test_format_uptime(seconds: float | None, text: str) -> None:
    assert format_uptime(seconds) == text


def test_parse_time_handles_docker_nanoseconds_and_zero_time() -> None:
    assert parse_time("2026-11-24T11:55:00.123456789Z") == datetime(
        2026, 11, 24, 11, 55, 0, 123456, tzinfo=UTC
    )
    assert parse_time(None) is None
    assert parse_time("garbage") is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("10m", "600s"),
        ("1h30m", "5400s"),
        ("2d", "172800s"),
        ("45s", "45s"),
        (" 5m ", "300s"),
        ("30d", "2592000s"),
        ("1d12h", "129600s"),
        ("500ms", "0.5s"),
        ("2026-11-24", "2026-11-24"),
        ("2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z"),
        ("2026-11-24T10:00:00.5+01:00", "2026-11-24T10:00:00.5+01:00"),
    ],
)
def test_parse_since(given: str, expected: str) -> None:
    assert parse_since(given) == expected


@pytest.mark.parametrize("bad", ["", "10", "ten minutes", "5m; rm -rf /", "1w", "m"])
def test_parse_since_rejects_other_text(bad: str) -> None:
    with pytest.raises(UsageError, match="--since"):
        parse_since(bad)


def test_logs_script_quotes_and_wraps_follow() -> None:
    options = LogOptions(since="600s", tail=5)
    assert logs_script("abc", options, follow=False) == (
        "docker logs --timestamps --since 600s --tail 5 abc"
    )
    follow = logs_script("abc", LogOptions(), follow=True)
    assert follow.startswith("exec 3<&0; docker logs --timestamps --follow abc & p=$!;")
    assert "cat <&3" in follow and follow.endswith("wait $p")


def test_split_timestamp_and_render() -> None:
    time, text = split_timestamp("2026-11-24T11:55:00.123456789Z hello  world")
    assert (time, text) == ("2026-11-24T11:55:00.123456789Z", "hello  world")
    assert split_timestamp("no stamp here") == ("", "no stamp here")
    line = LogLine("web-1/web", "stdout", time, text)
    assert render_text(line, LogOptions()) == "hello  world"
    assert render_text(line, LogOptions(timestamps=True)) == f"{time} hello  world"


def _host(tmp_path: Path) -> SSHHost:
    options = SSHOptions(config_file=tmp_path / "ssh_config", control_dir=tmp_path)
    return SSHHost(SSHTarget("web-1", "10.0.0.11", "root", 2222), options)


def test_exec_argv_runs_docker_exec_without_connection_sharing(tmp_path: Path) -> None:
    argv = exec_argv(_host(tmp_path), "c0ffee", ["sh", "-c", "echo $HOME"], tty=False)
    assert argv[0] == "ssh" and "-t" not in argv
    assert argv[argv.index("--") + 1 :] == [
        "root@10.0.0.11",
        "docker exec -i c0ffee sh -c 'echo $HOME'",
    ]
    assert "ControlPath=none" in argv
    assert argv[argv.index("-p") + 1] == "2222"
    tty = exec_argv(_host(tmp_path), "c0ffee", ["sh"], tty=True)
    assert tty[tty.index("--") - 1] == "-t" and tty[-1] == "docker exec -it c0ffee sh"
    with pytest.raises(UsageError, match="no command"):
        exec_argv(_host(tmp_path), "c0ffee", [], tty=False)


def test_ssh_argv_shell_or_command(tmp_path: Path) -> None:
    shell = ssh_argv(_host(tmp_path), [], tty=True)
    assert shell[-2:] == ["--", "root@10.0.0.11"] and "-t" not in shell
    command = ssh_argv(_host(tmp_path), ["uptime", "&&", "df -h"], tty=False)
    assert command[-1] == "uptime && df -h"
    assert with_tty(["ssh", "-x", "--", "h"], True) == ["ssh", "-x", "-t", "--", "h"]


def test_secrets_report_lists_every_missing_name() -> None:
    from stagecraft.ops.secrets import SecretsMissing, SecretsReport, SecretStatus

    entries = (SecretStatus("A", "ok"), SecretStatus("B", "missing"), SecretStatus("C", "missing"))
    report = SecretsReport("production", "env", entries, hint="set B, C")
    assert report.to_json() == {
        "env": "production",
        "provider": "env",
        "secrets": [
            {"name": "A", "status": "ok"},
            {"name": "B", "status": "missing"},
            {"name": "C", "status": "missing"},
        ],
        "missing": ["B", "C"],
    }
    with pytest.raises(SecretsMissing) as raised:
        report.raise_for_missing()
    assert (
        raised.value.message == "production: 2 secrets missing from the env secrets provider: B, C"
    )
    assert raised.value.exit_code == 2 and raised.value.hint == "set B, C"
    SecretsReport("production", "env", entries[:1]).raise_for_missing()
