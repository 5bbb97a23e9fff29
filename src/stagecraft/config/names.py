"""Name rules shared by the config models: projects, hosts, services, variables."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ROLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DOMAIN = re.compile(rf"^(\*\.)?({_LABEL}\.)*{_LABEL}$")
PROVIDER_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")


def _rule(pattern: re.Pattern[str], what: str, rule: str) -> AfterValidator:
    """Check a string against ``pattern`` with a human message."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):  # `$` alone also matches before a final newline
            raise ValueError(f"invalid {what} {value!r}: {rule}")
        return value

    return AfterValidator(check)


def _schema(pattern: re.Pattern[str]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern.pattern})


def scalar_to_str(value: object) -> object:
    """Numbers and booleans written without quotes become strings (as Compose does)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


ProjectName = Annotated[
    str,
    _rule(PROJECT_NAME, "project name", "use lowercase letters, digits, '-' and '_'"),
    _schema(PROJECT_NAME),
]
EnvName = Annotated[
    str,
    _rule(PROJECT_NAME, "environment name", "use lowercase letters, digits, '-' and '_'"),
    _schema(PROJECT_NAME),
]
HostName = Annotated[
    str, _rule(HOST_NAME, "host name", "use letters, digits, '.', '-' and '_'"), _schema(HOST_NAME)
]
RoleName = Annotated[
    str, _rule(ROLE_NAME, "role name", "use letters, digits, '-' and '_'"), _schema(ROLE_NAME)
]
ServiceName = Annotated[
    str,
    _rule(SERVICE_NAME, "service name", "use letters, digits, '.', '-' and '_'"),
    _schema(SERVICE_NAME),
]
VarName = Annotated[
    str,
    _rule(VAR_NAME, "variable name", "use letters, digits and '_', not starting with a digit"),
    _schema(VAR_NAME),
]
RouteName = Annotated[
    str,
    _rule(DNS_LABEL, "route name", "use a DNS label: lowercase letters, digits and '-'"),
    _schema(DNS_LABEL),
]
Domain = Annotated[
    str, _rule(DOMAIN, "domain", "expected a DNS name like app.example.com"), _schema(DOMAIN)
]
ProviderId = Annotated[
    str,
    _rule(PROVIDER_ID, "provider id", "use lowercase letters, digits, '.', '-' and '_'"),
    _schema(PROVIDER_ID),
]
TableName = Annotated[
    str,
    _rule(TABLE_NAME, "table name", "use an SQL identifier, optionally schema-qualified"),
    _schema(TABLE_NAME),
]
EnvValue = Annotated[str, BeforeValidator(scalar_to_str)]
