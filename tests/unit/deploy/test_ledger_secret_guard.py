"""The ledger's secret guard sees a value in the form JSON gives it on the line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagecraft.deploy.state import ledger
from stagecraft.deploy.state.ledger import LedgerRecord, SecretInRecord, ServiceRecord
from stagecraft.providers.secrets import SecretValue
from stagecraft.testing.fakes import FakeSSHHost

# Characters json.dumps escapes: quote, backslash, controls, anything past ASCII.
ESCAPED = st.sampled_from(['"', "\\", "\t", "\n", "\b", "\x01", "é", "€", "😀", "\u2028"])
plain = st.text(alphabet="abcdefXYZ0123456789_-", min_size=2, max_size=8)


def leaky(error: str) -> LedgerRecord:
    return LedgerRecord(
        release="20261123T100000Z-aaa",
        version="aaa",
        env="staging",
        host="web-1",
        started_at="2026-11-23T10:00:00+00:00",
        finished_at="2026-11-23T10:01:00+00:00",
        by="alice@laptop",
        command="deploy",
        outcome="failed",
        services={"api": ServiceRecord("shop/api:aaa", None, None, "failed", error)},
    )


@given(plain, ESCAPED, plain)
@settings(max_examples=200, deadline=None)
def test_a_value_that_json_escapes_is_still_refused(head: str, special: str, tail: str) -> None:
    value = head + special + tail
    record = leaky(f"container said: {value}")
    assert value not in record.to_line()  # on the line it is escaped
    host = FakeSSHHost("web-1")
    with pytest.raises(SecretInRecord) as caught:
        ledger.append(host, "shop", record, secrets=[SecretValue(value, name="STRIPE_KEY")])
    assert "STRIPE_KEY" in caught.value.message
    assert host.commands == []


@pytest.mark.parametrize(
    "value", ['sk"live"42', "C:\\keys\\prod", "tab\there", "pässwörd", "ключ-секрет"]
)
def test_examples_of_escaped_values(value: str) -> None:
    with pytest.raises(SecretInRecord):
        ledger.check_no_secrets(leaky(value).to_line(), [SecretValue(value, name="K")])


def test_other_values_and_short_ones_pass() -> None:
    line = leaky("nothing secret here").to_line()
    ledger.check_no_secrets(line, [SecretValue('unrelated"value', name="X")])
    ledger.check_no_secrets(line, [SecretValue("her", name="SHORT")])  # too short to check
