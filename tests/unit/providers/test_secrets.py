"""Secrets: values that never show, the env/dotenv/command providers, the dotenv parser."""

from __future__ import annotations

import json
import logging
import pickle
import stat
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest

from stagecraft import log
from stagecraft.errors import CommandTimeout, PrerequisiteMissing
from stagecraft.providers import registry
from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.builtin.secrets_dotenv import DotenvSyntaxError, parse_dotenv
from stagecraft.providers.secrets import (
    SecretsContext,
    SecretsError,
    SecretsProvider,
    SecretValue,
)

VALUE = "s3cr3t-Value-9f8e7d"


def test_secret_value_never_shows_itself(caplog: pytest.LogCaptureFixture) -> None:
    secret = SecretValue(VALUE, name="STRIPE_KEY")
    shown = [
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>40}",
        "%s %r" % (secret, secret),  # noqa: UP031
        f"{secret} {secret!r}",
        str([secret]),
        str({"k": secret}),
    ]
    assert not any(VALUE in text for text in shown)
    assert shown[0] == "SecretValue('STRIPE_KEY', '***')"
    assert shown[1] == "***"
    logger = logging.getLogger("stagecraft.test.secrets")
    with caplog.at_level(logging.DEBUG, logger="stagecraft"):
        logger.warning("key is %s (%r)", secret, secret)
        log.event(logger, logging.INFO, f"using {secret}", service="api", key=secret)
    assert VALUE not in caplog.text
    record = caplog.records[-1]
    assert VALUE not in log.JsonFormatter().format(record)
    assert VALUE not in log.HumanFormatter().format(record)
    assert secret.reveal() == VALUE


def test_secret_value_cannot_leak_through_serialisation() -> None:
    secret = SecretValue(VALUE)
    with pytest.raises(TypeError):
        json.dumps(secret)
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert repr(secret) == "SecretValue('***')"
    assert secret == SecretValue(VALUE, name="other") and secret != SecretValue("x")
    assert len({secret, SecretValue(VALUE)}) == 1
    with pytest.raises(TypeError):
        SecretValue(123)  # type: ignore[arg-type]


def _ctx(root: Path | None = None, **environ: str) -> SecretsContext:
    return SecretsContext(root=root or Path("."), environ=environ)


def test_env_provider_reads_prefixed_names_and_lists_all_missing() -> None:
    provider = registry("secrets").create("env", {"prefix": "STAGING_"})
    ctx = _ctx(STAGING_A_KEY="a", STAGING_EMPTY="", B_KEY="not-prefixed")
    values = provider.resolve(["A_KEY", "EMPTY"], ctx)
    assert {k: v.reveal() for k, v in values.items()} == {"A_KEY": "a", "EMPTY": ""}
    with pytest.raises(SecretsError) as info:
        provider.resolve(["C_KEY", "A_KEY", "B_KEY", "C_KEY"], ctx)
    err = info.value
    assert err.missing == ("C_KEY", "B_KEY")
    assert err.message == "2 secrets not found by the env secrets provider: C_KEY, B_KEY"
    assert err.hint == (
        "set these environment variables before running stagecraft: STAGING_C_KEY, STAGING_B_KEY"
    )
    assert "not-prefixed" not in err.message + (err.hint or "")


def test_resolve_rejects_names_that_are_not_variable_names() -> None:
    provider = registry("secrets").create("env", {})
    with pytest.raises(SecretsError, match="invalid secret names: 'a-b', 'FOO\\\\n'"):
        provider.resolve(["a-b", "OK", "FOO\n"], _ctx(OK="1"))
    assert provider.resolve([], _ctx()) == {}


class _Counting(SecretsProvider):
    """Counts fetches (for the empty-request test)."""

    id: ClassVar[str] = "counting"
    calls: ClassVar[int] = 0

    def fetch(self, names: list[str], ctx: SecretsContext) -> Mapping[str, str]:
        type(self).calls += 1
        return {n: "v" for n in names}


def test_default_hint_and_no_fetch_for_no_names() -> None:
    provider = _Counting(ProviderConfig())
    assert provider.resolve([], _ctx()) == {}
    assert _Counting.calls == 0
    hint = provider.missing_hint(["X"], _ctx())
    assert hint == "provide them through the counting secrets provider"


DOTENV_CASES: dict[str, tuple[str, dict[str, str]]] = {
    "plain": ("A=1\nB=two words\n", {"A": "1", "B": "two words"}),
    "export-and-spaces": (
        "export A = 1\n  export\tB=2\nexport=3\n",
        {"A": "1", "B": "2", "export": "3"},
    ),
    "comments": (
        "# c\n  # indented\nA=1 # note\nB=x#not-a-comment\nC= #v\n",
        {"A": "1", "B": "x#not-a-comment", "C": "#v"},
    ),
    "empty": ("A=\nB=''\nC=\"\"\n", {"A": "", "B": "", "C": ""}),
    "single-quotes-literal": ("A='$HOME \\n # kept'\n", {"A": "$HOME \\n # kept"}),
    "double-quote-escapes": (
        'A="tab\\there \\"q\\" back\\\\slash \\$x \\z"\n',
        {"A": 'tab\there "q" back\\slash $x \\z'},
    ),
    "multi-line-double": (
        'KEY="-----BEGIN-----\nline2\n-----END-----"\nNEXT=1\n',
        {"KEY": "-----BEGIN-----\nline2\n-----END-----", "NEXT": "1"},
    ),
    "multi-line-single": ("A='x\ny'\nB=2\n", {"A": "x\ny", "B": "2"}),
    "quoted-then-comment": ("A=\"v\" # why\nB='w'   \n", {"A": "v", "B": "w"}),
    "crlf": ('A=1\r\nB="x\r\ny"\r\n', {"A": "1", "B": "x\ny"}),
    "later-wins": ("A=1\nA=2\n", {"A": "2"}),
    "dots-and-dashes-in-keys": ("app.name=x\nmy-key=y\n", {"app.name": "x", "my-key": "y"}),
    "dollar-is-literal": ("A=${HOME}/x\nB=$B\n", {"A": "${HOME}/x", "B": "$B"}),
    "no-trailing-newline": ("A=1", {"A": "1"}),
    "blank-only": ("\n\n   \n", {}),
}


@pytest.mark.parametrize("name", sorted(DOTENV_CASES))
def test_dotenv_parsing(name: str) -> None:
    text, expected = DOTENV_CASES[name]
    assert parse_dotenv(text) == expected


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("A=1\njust words\n", 2, "expected KEY=VALUE"),
        ("A=1\n1BAD=2\n", 2, "expected KEY=VALUE"),
        ('A=1\nB="open\nstill open\n', 2, "unterminated double-quoted value of B"),
        ("A='open\n", 1, "unterminated single-quoted value of A"),
        ('A="x" y\n', 1, "unexpected text after the quoted value of A"),
        ('A="a\nb"\nC="c" d\n', 3, "unexpected text after the quoted value of C"),
    ],
)
def test_dotenv_errors_give_the_line_but_never_the_value(text: str, line: int, reason: str) -> None:
    with pytest.raises(DotenvSyntaxError) as info:
        parse_dotenv(text)
    assert (info.value.line, info.value.reason) == (line, reason)
    assert "open" not in str(info.value) and "words" not in str(info.value)


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


def test_dotenv_provider_reads_the_file_relative_to_the_root(tmp_path: Path) -> None:
    _write(tmp_path / ".env.staging", f"POSTGRES_PASSWORD='{VALUE}'\nOTHER=x\n")
    provider = registry("secrets").create("dotenv", {"path": ".env.staging"})
    values = provider.resolve(["POSTGRES_PASSWORD"], _ctx(tmp_path))
    assert values["POSTGRES_PASSWORD"].reveal() == VALUE
    with pytest.raises(SecretsError) as info:
        provider.resolve(["POSTGRES_PASSWORD", "STRIPE_KEY", "JWT"], _ctx(tmp_path))
    assert info.value.missing == ("STRIPE_KEY", "JWT")
    assert info.value.hint == f"add STRIPE_KEY=... lines to {tmp_path / '.env.staging'}"
    assert VALUE not in info.value.message


def test_dotenv_missing_file_says_where_and_what_to_do(tmp_path: Path) -> None:
    provider = registry("secrets").create("dotenv", {"path": ".env.prod"})
    with pytest.raises(SecretsError) as info:
        provider.resolve(["A"], _ctx(tmp_path))
    assert info.value.message == f"env file {tmp_path / '.env.prod'} does not exist"
    assert info.value.hint and "KEY=VALUE" in info.value.hint


def test_dotenv_syntax_error_names_file_and_line_only(tmp_path: Path) -> None:
    _write(tmp_path / ".env", f"A='{VALUE}'\nB=\"{VALUE}\n")
    provider = registry("secrets").create("dotenv", {"path": ".env"})
    with pytest.raises(SecretsError) as info:
        provider.resolve(["A"], _ctx(tmp_path))
    assert info.value.message == f"{tmp_path / '.env'}:2: unterminated double-quoted value of B"
    assert VALUE not in info.value.message + (info.value.hint or "")


def test_dotenv_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()
    provider = registry("secrets").create("dotenv", {"path": ".env"})
    with pytest.raises(SecretsError, match="cannot read env file"):
        provider.resolve(["A"], _ctx(tmp_path))


def test_dotenv_warns_about_shared_files_and_never_logs_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path / ".env", f"A={VALUE}\n", mode=0o644)
    provider = registry("secrets").create("dotenv", {"path": ".env"})
    with caplog.at_level(logging.DEBUG, logger="stagecraft"):
        provider.resolve(["A"], _ctx(tmp_path))
    assert "readable by other users (mode 0644)" in caplog.text
    assert VALUE not in caplog.text
    caplog.clear()
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    with caplog.at_level(logging.WARNING, logger="stagecraft"):
        provider.resolve(["A"], _ctx(tmp_path))
    assert not caplog.records


SCRIPT = f"""\
#!/bin/sh
# A stand-in for a password manager: `store get NAME`.
[ "$1" = get ] || exit 64
[ "$2" = "$STAGECRAFT_SECRET_NAME" ] || exit 65
case "$2" in
  STRIPE_KEY) printf '%s\\n' '{VALUE}' ;;
  MULTI) printf 'line1\\nline2\\n\\n' ;;
  EMPTY) ;;
  BROKEN) echo 'would-be-secret-on-stdout'; echo 'vault is sealed' >&2; exit 3 ;;
  DENIED) echo 'permission denied' >&2; exit 5 ;;
  SLOW) sleep 5 ;;
  *) exit 1 ;;
esac
"""


@pytest.fixture
def store(tmp_path: Path) -> Path:
    script = tmp_path / "store"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    return script


def test_command_provider_runs_once_per_name(store: Path, tmp_path: Path) -> None:
    provider = registry("secrets").create("command", {"command": f"{store} get {{name}}"})
    values = provider.resolve(["STRIPE_KEY", "MULTI"], _ctx(tmp_path))
    assert values["STRIPE_KEY"].reveal() == VALUE
    assert values["MULTI"].reveal() == "line1\nline2"


def test_command_provider_empty_output_counts_as_missing(store: Path, tmp_path: Path) -> None:
    provider = registry("secrets").create("command", {"command": [str(store), "get", "{name}"]})
    with pytest.raises(SecretsError) as info:
        provider.resolve(["STRIPE_KEY", "EMPTY"], _ctx(tmp_path))
    assert info.value.missing == ("EMPTY",)
    assert info.value.hint == (
        f"`{store} get {{name}}` printed nothing for them: add them to its store"
    )


def test_command_provider_failures_show_name_and_code_not_stdout(
    store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    provider = registry("secrets").create("command", {"command": [str(store), "get", "{name}"]})
    with caplog.at_level(logging.DEBUG, logger="stagecraft"), pytest.raises(SecretsError) as info:
        provider.resolve(["BROKEN", "STRIPE_KEY", "DENIED"], _ctx(tmp_path))
    assert info.value.message == (
        f"secrets command `{store}` failed for 2 secrets: "
        "BROKEN (exit 3: vault is sealed), DENIED (exit 5: permission denied)"
    )
    assert "would-be-secret" not in info.value.message
    assert VALUE not in caplog.text and "would-be-secret" not in caplog.text


def test_command_provider_dotenv_mode(tmp_path: Path) -> None:
    script = tmp_path / "dump"
    script.write_text(
        '#!/bin/sh\necho "# for: $STAGECRAFT_SECRET_NAMES"\n'
        f"echo 'A_KEY=\"{VALUE}\"'\necho 'B_KEY=b'\n"
    )
    script.chmod(0o755)
    provider = registry("secrets").create("command", {"command": [str(script)], "mode": "dotenv"})
    values = provider.resolve(["A_KEY", "B_KEY"], _ctx(tmp_path))
    assert {k: v.reveal() for k, v in values.items()} == {"A_KEY": VALUE, "B_KEY": "b"}
    with pytest.raises(SecretsError) as info:
        provider.resolve(["A_KEY", "C_KEY"], _ctx(tmp_path))
    assert info.value.missing == ("C_KEY",)


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (f"echo 'A={VALUE}'; echo boom >&2; exit 2", "exited with 2: boom"),
        (f"echo 'A=\"{VALUE}'", "is not dotenv: unterminated double-quoted value of A"),
    ],
)
def test_command_provider_dotenv_mode_errors(tmp_path: Path, script: str, message: str) -> None:
    provider = registry("secrets").create(
        "command", {"command": ["sh", "-c", script], "mode": "dotenv"}
    )
    with pytest.raises(SecretsError) as info:
        provider.resolve(["A"], _ctx(tmp_path))
    assert message in info.value.message
    assert VALUE not in info.value.message


def test_command_provider_missing_program_and_timeout(store: Path, tmp_path: Path) -> None:
    missing = registry("secrets").create("command", {"command": "no-such-password-manager {name}"})
    with pytest.raises(PrerequisiteMissing) as info:
        missing.resolve(["A"], _ctx(tmp_path))
    assert "no-such-password-manager" in info.value.message
    slow = registry("secrets").create(
        "command", {"command": [str(store), "get", "{name}"], "timeout": 0.5}
    )
    with pytest.raises(CommandTimeout):
        slow.resolve(["SLOW"], _ctx(tmp_path))


def test_command_provider_gets_the_context_environment(tmp_path: Path) -> None:
    provider = registry("secrets").create(
        "command", {"command": ["sh", "-c", 'printf %s "$VAULT_ADDR/$STAGECRAFT_SECRET_NAME"']}
    )
    values = provider.resolve(["A_KEY"], SecretsContext(tmp_path, {"VAULT_ADDR": "https://v"}))
    assert values["A_KEY"].reveal() == "https://v/A_KEY"
