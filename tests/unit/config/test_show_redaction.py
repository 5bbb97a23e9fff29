"""``config show`` hides every password syntax, in whatever key its value sits."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from stagecraft.config.loader import load_config
from stagecraft.config.show import resolved_view

pytestmark = pytest.mark.usefixtures("fakes")

CONFIG = """\
project: shop
environments:
  staging:
    hosts:
      web-1: {address: 203.0.113.10, roles: [web]}
    roles: {web: [api]}
    env:
      DB_URL: "postgresql://app@db/shop?sslmode=off&password=query-pw-1&connect_timeout=5"
      DB_CONNINFO: "host=db user=app password='conninfo pw\\\\' 2' dbname=shop"
      DB_PLAIN: "host=db password=plain-pw-3 dbname=shop"
      HASHY_URL: "postgresql://app:hash#pw?4@db/shop"
      AT_URL: "redis://:at@pw/5@cache:6379/0"
      COMMAND: "psql postgres://app:cmd-pw-6@db/shop -c 'select 1'"
      LOG_LEVEL: info
      PUBLIC_URL: https://shop.example/
"""
SECRETS = ("query-pw-1", "conninfo pw", "plain-pw-3", "hash#pw?4", "hash", "at@pw/5", "cmd-pw-6")


def test_show_hides_query_conninfo_and_userinfo_passwords(
    write_config: Callable[[str], Path],
) -> None:
    view = resolved_view(load_config(write_config(CONFIG), environ={}), "staging")
    text = json.dumps(view, ensure_ascii=False)
    for secret in SECRETS:
        assert secret not in text
    env = view["environments"]["staging"]["env"]
    assert env["DB_URL"] == "postgresql://app@db/shop?sslmode=off&password=***&connect_timeout=5"
    assert env["DB_CONNINFO"] == "host=db user=app password=*** dbname=shop"
    assert env["DB_PLAIN"] == "host=db password=*** dbname=shop"
    assert env["HASHY_URL"] == "postgresql://app:***@db/shop"
    assert env["AT_URL"] == "redis://:***@cache:6379/0"
    assert env["COMMAND"] == "psql postgres://app:***@db/shop -c 'select 1'"
    assert env["LOG_LEVEL"] == "info"
    assert env["PUBLIC_URL"] == "https://shop.example/"
