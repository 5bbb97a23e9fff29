"""``stagecraft.redact``: libpq's DSN grammar, declared values in every encoding, one redaction.

libpq itself (through psycopg's ``conninfo_to_dict``, i.e. ``PQconninfoParse``)
is the oracle for the parser.
"""

from __future__ import annotations

import io
import json
import logging
import shlex
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from stagecraft import log, redact
from stagecraft.errors import ExitCode
from stagecraft.providers.migration import redact_dsn as migration_redact_dsn
from stagecraft.providers.migration import scrub
from stagecraft.providers.secrets import SecretValue
from stagecraft.redact import DsnError, Redactor, dsn_password, parse_dsn, redact_dsn
from stagecraft.runtime import process

# Everything a password can hold, weighted towards what splits a URL or a conninfo string.
TRICKY = "#?@/:%& '\"\\=\t+,[]é€😀"
passwords = st.text(
    alphabet=st.sampled_from(TRICKY) | st.characters(min_codepoint=33, max_codepoint=126),
    min_size=1,
    max_size=24,
)


def libpq(dsn: str) -> dict[str, str]:
    return dict(conninfo_to_dict(dsn))


def outcome(parse: Callable[[str], dict[str, str]], dsn: str) -> dict[str, str] | str:
    """What a parser makes of ``dsn``: its keywords, or ``"refused"``."""
    try:
        return parse(dsn)
    except (DsnError, psycopg.ProgrammingError):
        return "refused"


def conninfo_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# -- the parser agrees with libpq ---------------------------------------------------------


@given(passwords)
@settings(max_examples=300, deadline=None)
def test_percent_encoded_userinfo_password_reads_as_libpq_reads_it(password: str) -> None:
    dsn = f"postgresql://app:{quote(password, safe='')}@db:5432/shop?sslmode=off"
    assert parse_dsn(dsn) == libpq(dsn)
    assert parse_dsn(dsn)["password"] == password
    assert redact_dsn(dsn) == "postgresql://app:***@db:5432/shop?sslmode=off"


@given(passwords.filter(lambda p: not set(p) & set("@/%")))
@settings(max_examples=300, deadline=None)
def test_raw_userinfo_password_with_hash_and_question_mark_is_libpq_s(password: str) -> None:
    """libpq does not split at ``#`` or ``?`` in the userinfo (``urlsplit`` does)."""
    dsn = f"postgresql://app:{password}@db/shop"
    read = outcome(parse_dsn, dsn)
    assert read == outcome(libpq, dsn)  # an inner space: both refuse it
    assert redact_dsn(dsn) == "postgresql://app:***@db/shop"
    if read != "refused":
        assert dsn_password(dsn) == libpq(dsn).get("password")


def test_hash_and_question_mark_example() -> None:
    dsn = "postgresql://app:pa#ss?wd@db:5432/shop?sslmode=off"
    assert parse_dsn(dsn) == {
        "user": "app",
        "password": "pa#ss?wd",
        "host": "db",
        "port": "5432",
        "dbname": "shop",
        "sslmode": "off",
    }


@given(passwords)
@settings(max_examples=300, deadline=None)
def test_quoted_conninfo_password_reads_as_libpq_reads_it(password: str) -> None:
    dsn = f"host=db user=app password = {conninfo_quote(password)} dbname=shop"
    assert parse_dsn(dsn) == libpq(dsn)
    assert parse_dsn(dsn)["password"] == password
    assert redact_dsn(dsn) == "host=db user=app password = *** dbname=shop"


@given(passwords.filter(lambda p: not set(p) & set(" \t'\\")))
@settings(max_examples=200, deadline=None)
def test_unquoted_conninfo_password_reads_as_libpq_reads_it(password: str) -> None:
    dsn = f"password={password} host=db"
    assert outcome(parse_dsn, dsn) == outcome(libpq, dsn)
    assert redact_dsn(dsn) == "password=*** host=db"


@given(passwords, st.sampled_from(["password", "pass%77ord", "PASSWORD"]))
@settings(max_examples=200, deadline=None)
def test_query_password_reads_as_libpq_reads_it(password: str, key: str) -> None:
    dsn = f"postgresql://app@db/shop?sslmode=off&{key}={quote(password, safe='')}&connect_timeout=5"
    if key != "PASSWORD":  # libpq keywords are case-sensitive; redaction is not
        assert parse_dsn(dsn) == libpq(dsn)
        assert parse_dsn(dsn)["password"] == password
    assert redact_dsn(dsn) == f"postgresql://app@db/shop?sslmode=off&{key}=***&connect_timeout=5"


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://h1,h2:5433/d",
        "postgresql://[::1]:5432/d?ssl=true",
        "postgres://u@/d",
        "postgresql://:pw@h",
        "postgresql://u:pw@h/d?password=o%26",
        "  host = h   dbname=x\\ y  ",
        "password= host=x",  # libpq: the password is "host=x"
        "password=a\\",
        "",
    ],
)
def test_parser_edge_cases_match_libpq(dsn: str) -> None:
    assert parse_dsn(dsn) == libpq(dsn)


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app:pw@[::1/app",
        "postgresql://app:pw@[]/app",
        "postgresql://app:pw@[::1]x/app",
        "postgresql://app:p%zzw@db/app",
        "postgresql://app:p%00w@db/app",
        "postgresql://app:pw@db/app?sslmode",
        "postgresql://app:pw@db/app?a=b=c",
        "host=db password='pw",
        "postgresql://app:p%w@db/app",
        "host=db pass word=pw",
        "host=db password 'pw'",
    ],
)
def test_what_libpq_refuses_is_a_config_error_that_hides_the_password(dsn: str) -> None:
    assert outcome(libpq, dsn) == "refused"
    with pytest.raises(DsnError) as caught:
        parse_dsn(dsn, where="$DATABASE_URL")
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.message.startswith("$DATABASE_URL: malformed database ")
    assert "pw" not in caught.value.message


@given(st.tuples(passwords, st.sampled_from("@/"), passwords).map("".join))
@settings(max_examples=200, deadline=None)
def test_unencoded_at_or_slash_is_refused_and_hidden_whole(password: str) -> None:
    """libpq would split ``p@ss`` at the first ``@`` and print the rest as a host name."""
    dsn = f"postgresql://app:{password}@db/shop"
    with pytest.raises(DsnError):
        parse_dsn(dsn)
    assert redact_dsn(dsn) == "postgresql://app:***@db/shop"
    assert password in redact.dsn_secrets(dsn)


def test_libpq_s_own_message_would_quote_the_password() -> None:
    with pytest.raises(psycopg.ProgrammingError, match="pw"):
        libpq("postgresql://app:pw@[::1/app")


def test_old_public_names_redact_hash_and_question_mark_passwords() -> None:
    dsn = "postgresql://app:pa#ss?wd@db/shop"
    assert migration_redact_dsn(dsn) == "postgresql://app:***@db/shop"
    assert scrub("auth failed for pa#ss?wd", dsn) == "auth failed for ***"
    nested = "host=db dbname=postgresql://app:inner-pw@db/shop"
    assert "inner-pw" not in redact_dsn(nested)


# -- declared values in every encoding ----------------------------------------------------

values = st.text(
    alphabet=st.sampled_from(TRICKY) | st.characters(min_codepoint=33, max_codepoint=126),
    min_size=redact.MIN_SECRET_LENGTH,
    max_size=20,
)
ENCODINGS = {
    "json": lambda v: json.dumps(v)[1:-1],
    "json-unicode": lambda v: json.dumps(v, ensure_ascii=False)[1:-1],
    "shell": lambda v: shlex.join(["--build-arg", f"TOKEN={v}"]),
    "percent": lambda v: quote(v, safe=""),
    "percent-userinfo": lambda v: quote(v, safe="!$&'()*+,;="),
    "plus": quote_plus,
    "repr": lambda v: repr(v)[1:-1],
}


@given(values, st.sampled_from(sorted(ENCODINGS)))
@settings(max_examples=400, deadline=None)
def test_redactor_finds_a_value_in_every_encoding(value: str, encoding: str) -> None:
    guard = Redactor([SecretValue(value, name="API_KEY")])
    text = f"<< {ENCODINGS[encoding](value)} >>"
    assert guard.find(text) == "API_KEY"
    assert "***" in guard.redact(text)
    assert guard.find("<< nothing here >>") is None


def test_short_values_are_not_searched_for() -> None:
    guard = Redactor(["abc"])
    assert guard.redact("abc abc") == "abc abc"
    assert Redactor(["abc"], min_length=1).redact("abc!") == "***!"


# -- the one redaction, everywhere --------------------------------------------------------


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The stagecraft logger at DEBUG (``--verbose``) into a buffer; restored afterwards."""
    logger = logging.getLogger("stagecraft")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    buffer = io.StringIO()
    log.configure(stream=buffer, fmt="json", verbose=True)
    yield buffer
    logger.handlers[:], logger.level, logger.propagate = saved


def test_verbose_argv_log_hides_resolved_secrets_and_dsn_passwords(log_lines: io.StringIO) -> None:
    canary = f'canary-{uuid.uuid4().hex}\t"é'
    redact.remember(canary, name="CANARY")
    process.run(["true", f"--token={canary}", "postgresql://app:pa#ss?wd@db/shop"])
    logging.getLogger("stagecraft.test").info("db %s", "postgres://app:x?y@db/shop?password=q&a=1")
    text = log_lines.getvalue()
    assert "$ true" in text
    assert canary not in text and json.dumps(canary)[1:-1] not in text
    assert "pa#ss" not in text and "x?y" not in text and "password=q" not in text


def test_secrets_provider_values_are_redacted_from_then_on() -> None:
    from stagecraft.providers import registry
    from stagecraft.providers.secrets import SecretsContext

    canary = f"env-secret-{uuid.uuid4().hex}"
    context = SecretsContext(root=Path("."), environ={"APP_KEY": canary})
    registry("secrets").create("env", {}).resolve(["APP_KEY"], context)
    assert redact.redact(f"token {quote(canary)} used") == "token *** used"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://app@db/shop?password=hunter2", "postgresql://app@db/shop?password=***"),
        ("host=db user=app password='a b' port=1", "host=db user=app password=*** port=1"),
        ("redis://:pa#ss@cache:6379/0", "redis://:***@cache:6379/0"),
        ("see postgres://u:p@ss@db/x for it", "see postgres://u:***@db/x for it"),
        ('{"password": "x\\"y", "user": "u"}', '{"password": "***", "user": "u"}'),
        ("export PGPASSWORD=hunter2 && psql", "export PGPASSWORD=*** && psql"),
        ("https://shop.example/ by alice@laptop", "https://shop.example/ by alice@laptop"),
        ("http://web:8080/ up, by alice@laptop", "http://web:8080/ up, by alice@laptop"),
        ("postgresql://app:pa ss@db/shop", "postgresql://app:***@db/shop"),
    ],
)
def test_redact_finds_every_password_syntax(text: str, shown: str) -> None:
    assert redact.redact(text) == shown
