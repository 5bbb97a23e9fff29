"""Every name rule matches the whole value: a trailing newline or control character never passes.

Names become paths, labels and host names (``/srv/<project>/<env>``, Compose
project names, image tags, release directories, SQL identifiers); Python's
``$`` also matches just before a final newline, so the rules use full matches.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError, WithJsonSchema

from stagecraft.config import names
from stagecraft.config.models import ProjectConfig, parse_route_target
from stagecraft.config.show import _holds_a_name
from stagecraft.deploy.release import explicit_version, parse_release_id
from stagecraft.errors import StagecraftError, UsageError
from stagecraft.init.model import is_valid_project_name
from stagecraft.providers.migration import MigrationFileError, MigrationTarget


def _validators() -> dict[str, tuple[TypeAdapter[str], str]]:
    """Each ``Annotated`` name type of ``names`` that carries a pattern: (adapter, pattern)."""
    found: dict[str, tuple[TypeAdapter[str], str]] = {}
    for attribute, value in vars(names).items():
        if typing.get_origin(value) is not typing.Annotated:
            continue
        schemas = [m for m in value.__metadata__ if isinstance(m, WithJsonSchema)]
        pattern = (
            schemas[0].json_schema.get("pattern") if schemas and schemas[0].json_schema else None
        )
        if pattern:
            found[attribute] = (TypeAdapter(value), pattern)
    return found


VALIDATORS = _validators()
CONTROL = st.sampled_from(["\n", "\r", "\t", "\x00", "\x0b", "\x0c", "\x1b", "\x7f", "\u2028"])


def _accepts(adapter: TypeAdapter[str], value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def test_every_name_rule_of_names_py_is_checked() -> None:
    assert set(VALIDATORS) >= {
        "ProjectName",
        "EnvName",
        "HostName",
        "RoleName",
        "ServiceName",
        "VarName",
        "RouteName",
        "Domain",
        "ProviderId",
        "TableName",
    }


@pytest.mark.parametrize("name", sorted(VALIDATORS))
@settings(max_examples=60, deadline=None)
@given(data=st.data(), control=CONTROL)
def test_a_valid_name_with_a_control_character_is_rejected(
    name: str, data: st.DataObject, control: str
) -> None:
    adapter, pattern = VALIDATORS[name]
    valid = data.draw(st.from_regex(pattern, fullmatch=True), label="valid")
    assert _accepts(adapter, valid)
    at = data.draw(st.integers(0, len(valid)), label="at")
    assert not _accepts(adapter, valid + control)
    assert not _accepts(adapter, valid[:at] + control + valid[at:])


@pytest.mark.parametrize("name", sorted(VALIDATORS))
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_an_accepted_name_fully_matches_its_rule(name: str, data: st.DataObject) -> None:
    adapter, pattern = VALIDATORS[name]
    # Strings that contain a match somewhere (with anything around it), and random text.
    around = st.from_regex(pattern, fullmatch=False)
    text = data.draw(st.one_of(around, st.text(st.characters(codec="ascii"), max_size=20)))
    if _accepts(adapter, text):
        assert re.fullmatch(pattern, text) and "\n" not in text


@pytest.mark.parametrize(
    "check",
    [
        lambda: ProjectConfig(name="shop", registry="ghcr.io/acme\n"),
        lambda: parse_route_target("api", "api:4000\n"),
        lambda: explicit_version("v1.2\n"),
        lambda: parse_release_id("20260102T030405Z-0123456789ab\n"),
        lambda: MigrationTarget("postgresql://db/shop", Path("m"), table="migrations\n"),
    ],
    ids=["registry", "route-target", "version-tag", "release-id", "migration-table"],
)
def test_other_name_rules_reject_a_trailing_newline(check: typing.Callable[[], object]) -> None:
    with pytest.raises((ValueError, StagecraftError, UsageError, MigrationFileError)):
        check()


def test_init_and_redaction_see_a_trailing_newline_as_no_name() -> None:
    assert is_valid_project_name("shop") and not is_valid_project_name("shop\n")
    assert _holds_a_name("password_secret", "GHCR_TOKEN")
    assert not _holds_a_name("password_secret", "GHCR_TOKEN\n")
