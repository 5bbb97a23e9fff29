"""Unit tests of ledger records, merging, partial lines, retention and the secret guard."""

from __future__ import annotations

import logging
import re

import pytest

from stagecraft.deploy.state import ledger
from stagecraft.deploy.state.ledger import LedgerRecord, SecretInRecord, ServiceRecord
from stagecraft.providers.secrets import SecretValue
from stagecraft.testing.fakes import FakeSSHHost


def record(release: str, host: str, outcome: str = "success", **changes: object) -> LedgerRecord:
    base = LedgerRecord(
        release=release,
        version=release.rsplit("-", maxsplit=1)[-1],
        env="staging",
        host=host,
        started_at=f"2026-11-23T10:00:0{len(host) % 10}+00:00",
        finished_at="2026-11-23T10:01:00+00:00",
        by="alice@laptop",
        command="deploy",
        outcome=outcome,
        services={"api": ServiceRecord(f"shop/api:{release[-3:]}", "sha256:1", "h1", outcome)},
    )
    return LedgerRecord(**{**base.__dict__, **changes})


def test_line_round_trip() -> None:
    rec = record("20261123T100000Z-aaa", "web-1")
    assert "\n" not in rec.to_line()
    assert ledger.parse_lines(rec.to_line() + "\n") == [rec]
    assert rec.duration == 55.0  # 10:00:05 -> 10:01:00


def test_partial_line_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    good = record("20261123T100000Z-aaa", "web-1")
    text = good.to_line() + "\n" + good.to_line()[:40] + "\n" + good.to_line() + "\n{}\n"
    with caplog.at_level(logging.WARNING, logger="stagecraft"):
        found = ledger.parse_lines(text, host="web-1")
    assert found == [good, good]
    warnings = [r.getMessage() for r in caplog.records]
    assert any("line 2 skipped" in w for w in warnings)
    assert any("line 4 skipped" in w for w in warnings)


def test_merge_groups_by_release_newest_first_with_overall_outcome() -> None:
    records = [
        record("20261123T100000Z-aaa", "web-1"),
        record("20261123T100000Z-aaa", "web-2"),
        record("20261124T100000Z-bbb", "web-1"),
        record("20261124T100000Z-bbb", "web-2", outcome="failed"),
        record("20261125T100000Z-ccc", "web-1", outcome="interrupted"),
    ]
    merged = ledger.merge(records)
    assert [r.id for r in merged] == [
        "20261125T100000Z-ccc",
        "20261124T100000Z-bbb",
        "20261123T100000Z-aaa",
    ]
    assert [r.outcome for r in merged] == ["interrupted", "failed", "success"]
    assert list(merged[1].hosts) == ["web-1", "web-2"]
    assert merged[2].images == {"shop/api:aaa"}


def test_a_later_record_of_a_host_wins() -> None:
    first = record("20261123T100000Z-aaa", "web-1", outcome="failed")
    again = record("20261123T100000Z-aaa", "web-1")
    assert ledger.merge([first, again])[0].outcome == "success"


def test_previous_successful_and_retention() -> None:
    ids = ["20261120T0Z-a", "20261121T0Z-b", "20261122T0Z-c", "20261123T0Z-d"]
    outcomes = ["success", "success", "failed", "success"]
    merged = ledger.merge(record(i, "web-1", o) for i, o in zip(ids, outcomes, strict=True))
    target = ledger.previous_successful(merged)
    assert target is not None and target.id == "20261121T0Z-b"
    older = ledger.previous_successful(merged, current="20261121T0Z-b")
    assert older is not None and older.id == "20261120T0Z-a"
    assert ledger.previous_successful(merged, current="20261120T0Z-a") is None
    kept = ledger.releases_to_keep(merged, 2, current="20261122T0Z-c")
    assert [r.id for r in kept] == ["20261123T0Z-d", "20261121T0Z-b", "20261122T0Z-c"]
    assert ledger.images_to_keep(merged, 1) == {"shop/api:Z-d"}


def test_history_find_accepts_a_unique_prefix() -> None:
    merged = ledger.merge([record("20261123T100000Z-aaa", "h"), record("20261124T1Z-bbb", "h")])
    found = ledger.History(merged, {})
    assert found.find("20261124") is merged[0]
    assert found.find("2026112") is None
    assert found.find("nope") is None


def test_secret_guard_refuses_a_record_with_a_secret_value() -> None:
    host = FakeSSHHost("web-1")
    leaky = record(
        "20261123T100000Z-aaa",
        "web-1",
        services={"api": ServiceRecord("shop/api:1", None, None, "failed", "bad key sk_live_42")},
    )
    secret = SecretValue("sk_live_42", name="STRIPE_KEY")
    with pytest.raises(SecretInRecord) as caught:
        ledger.append(host, "shop", leaky, secrets=[secret])
    assert "STRIPE_KEY" in caught.value.message and "sk_live_42" not in caught.value.message
    assert host.commands == []
    ledger.check_no_secrets("abc", [SecretValue("ab", name="SHORT")])  # too short to check


def test_append_sends_one_line_to_the_env_ledger() -> None:
    host = FakeSSHHost("web-1").expect(re.compile(r"oflag=append"))
    rec = record("20261123T100000Z-aaa", "web-1")
    ledger.append(host, "shop", rec, secrets=[SecretValue("unrelated-value", name="X")])
    assert "/var/lib/stagecraft/apps/shop/staging/ledger.jsonl" in host.commands[0]
    assert host.calls[0].input == (rec.to_line() + "\n").encode()


def test_a_host_that_wrote_no_record_still_counts_through_its_peers() -> None:
    peers = {"web-1": "success", "web-2": "failed"}
    first = record("20261123T100000Z-aaa", "web-1")
    lost = record("20261124T100000Z-bbb", "web-1", peers=peers)  # web-2 was not reached
    merged = ledger.merge([first, lost])

    assert merged[0].unrecorded == {"web-2": "failed"}
    assert merged[0].outcome == "failed"
    assert merged[0].to_dict()["unrecorded"] == {"web-2": "failed"}
    assert ledger.previous_successful(merged, current=None) is None  # only one success
    assert ledger.parse_lines(lost.to_line()) == [lost]
    old_line = first.to_line().replace(',"peers":{}', "")  # records written before peers
    assert '"peers"' not in old_line and ledger.parse_lines(old_line) == [first]
