"""Which images a deploy prunes: this environment's old ones, never another's retained ones."""

from __future__ import annotations

import re

from stagecraft.deploy.release import Release, Version
from stagecraft.deploy.rollout.record import prune
from stagecraft.deploy.state import ledger
from stagecraft.deploy.state.layout import ledger_path
from stagecraft.testing.fakes import FakeSSHHost

ALL = ["shop/web:s1", "shop/web:s2", "shop/web:s3", "shop/web:p1", "shop/web:p2", "shop/web:p3"]


def record(env: str, version: str, outcome: str = "success") -> ledger.LedgerRecord:
    return ledger.LedgerRecord(
        release=f"20261201T00000{version[-1]}Z-{version}",
        version=version,
        env=env,
        host="h1",
        started_at="2026-12-01T00:00:00+00:00",
        finished_at="2026-12-01T00:00:01+00:00",
        by="ci@runner",
        command="deploy",
        outcome=outcome,
        services={"web": ledger.ServiceRecord(f"shop/web:{version}", None, None, outcome)},
    )


def lines(*records: ledger.LedgerRecord) -> str:
    return "".join(r.to_line() + "\n" for r in records)


def staging_host(others: str) -> FakeSSHHost:
    """h1 with staging's ledger (s1, s2, s3), ``others`` as the other ledgers' listing."""
    host = FakeSSHHost("h1")
    text = lines(record("staging", "s1"), record("staging", "s2"), record("staging", "s3"))
    host.files[ledger_path("shop", "staging")] = (text.encode(), 0o644)
    host.expect(re.compile(r"printf .*1 > \"\$me/retain.tmp\""), stdout=others)
    host.expect(re.compile(r"^docker image ls"), stdout="\n".join(ALL) + "\n")
    host.expect(re.compile(r"^docker image rm"), times=None)
    return host


def removed(host: FakeSSHHost) -> list[str]:
    rm = [c for c in host.commands if c.startswith("docker image rm")]
    return rm[0].split()[3:] if rm else []


def release(version: str) -> Release:
    return Release(f"20261201T000003Z-{version}", Version(version), "shop", "staging", "shop")


def test_only_this_environments_old_images_are_pruned() -> None:
    production = lines(record("production", "p1"), record("production", "p2"))
    host = staging_host(f"\n#stagecraft-ledger 5 /x/shop/production\n{production}")
    prune([host], release("s3"), retain=1)
    assert removed(host) == ["shop/web:s1", "shop/web:s2"]


def test_an_image_another_environment_retains_stays_even_when_shared() -> None:
    """Production promoted staging's s1 and keeps it (retain 2); its p1 is beyond that."""
    production = lines(
        record("production", "p1"), record("production", "s1"), record("production", "p3")
    )
    host = staging_host(f"\n#stagecraft-ledger 2 /x/shop/production\n{production}")
    prune([host], release("s3"), retain=1)
    assert removed(host) == ["shop/web:s2"]


def test_an_environment_that_never_said_its_retain_keeps_everything() -> None:
    production = lines(record("production", "s1"), record("production", "p3"))
    host = staging_host(f"\n#stagecraft-ledger all /x/shop/production\n{production}")
    prune([host], release("s3"), retain=1)
    assert removed(host) == ["shop/web:s2"]


def test_another_environments_newest_release_stays_even_when_it_failed() -> None:
    production = lines(record("production", "p1"), record("production", "s2", "failed"))
    host = staging_host(f"\n#stagecraft-ledger 1 /x/shop/production\n{production}")
    prune([host], release("s3"), retain=1)
    assert removed(host) == ["shop/web:s1"]
