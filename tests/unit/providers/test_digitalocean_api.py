"""The DigitalOcean client and session against the local stand-in of the API."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from stagecraft.errors import ProviderError
from stagecraft.providers import registry
from stagecraft.providers.builtin.cloud_digitalocean import DigitalOceanCloud, DigitalOceanSession
from stagecraft.providers.builtin.digitalocean_api import (
    API_URL_ENV,
    DigitalOceanClient,
    DigitalOceanError,
    RetryPolicy,
)
from stagecraft.providers.cloud import ApiRequest, CloudHost, Server
from stagecraft.testing.digitalocean_standin import STANDIN_KEY, DigitalOceanStandin

TOKEN = "dop_v1_0123456789abcdef0123456789abcdef"
NOW = 1_750_000_000.0
ENV_TAG = "stagecraft-shop-staging"
HOSTS = [CloudHost("web-1", ("web",)), CloudHost("web-2", ("web",)), CloudHost("db", ("data",))]


class FakeTime:
    """A clock that moves only when slept on; remembers every sleep."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def time_() -> FakeTime:
    return FakeTime()


@pytest.fixture
def api(time_: FakeTime) -> Iterator[DigitalOceanStandin]:
    with DigitalOceanStandin(token=TOKEN, clock=time_.clock) as standin:
        yield standin


def _client(api: DigitalOceanStandin, time_: FakeTime, **options: Any) -> DigitalOceanClient:
    return DigitalOceanClient(
        options.pop("token", TOKEN),
        base_url=api.url,
        sleep=time_.sleep,
        clock=time_.clock,
        **options,
    )


def _do(**raw: Any) -> DigitalOceanCloud:
    provider = registry("cloud").create("digitalocean", {"ssh_keys": [512189], **raw})
    assert isinstance(provider, DigitalOceanCloud)
    return provider


def _session(
    api: DigitalOceanStandin,
    time_: FakeTime,
    provider: DigitalOceanCloud | None = None,
    **options: Any,
) -> DigitalOceanSession:
    return DigitalOceanSession(
        provider or _do(region="fra1"),
        _client(api, time_, **options),
        sleep=time_.sleep,
        clock=time_.clock,
    )


def _calls(api: DigitalOceanStandin, method: str | None = None) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in api.requests if method in (None, r.method)]


# -- listing: pagination and tags ---------------------------------------------------------------


def test_servers_follow_every_page_and_keep_the_tag_filter(
    api: DigitalOceanStandin, time_: FakeTime
) -> None:
    for n in (5, 3, 1, 4, 2):
        api.add_droplet(
            f"shop-staging-web-{n}", ["stagecraft", ENV_TAG, f"stagecraft-host-web-{n}"]
        )
    api.add_droplet("shop-prod-web-1", ["stagecraft", "stagecraft-shop-prod"])
    api.add_droplet("shop-staging-stray", [])

    servers = _session(api, time_, per_page=2).servers("shop", "staging")

    assert [s.name for s in servers] == [f"shop-staging-web-{n}" for n in (1, 2, 3, 4, 5)]
    assert [s.host for s in servers] == ["web-1", "web-2", "web-3", "web-4", "web-5"]
    pages = [r.query for r in api.requests]
    assert [q.get("page") for q in pages] == [None, "2", "3"]
    assert all(q["tag_name"] == ENV_TAG and q["per_page"] == "2" for q in pages)


def test_servers_report_addresses_from_the_v4_networks(
    api: DigitalOceanStandin, time_: FakeTime
) -> None:
    api.add_droplet("shop-staging-web-1", [ENV_TAG])
    api.add_droplet("shop-staging-web-2", [ENV_TAG], status="off")
    [web1, web2] = _session(api, time_).servers("shop", "staging")
    assert (web1.status, web1.public_address) == ("active", "203.0.113.2")
    assert web1.private_address is not None and web1.private_address.startswith("10.110.")
    assert web2.status == "off"
    assert [r.query["per_page"] for r in api.requests] == ["200"]  # list_request's page size


def test_collect_reads_every_page_of_ssh_keys(api: DigitalOceanStandin, time_: FakeTime) -> None:
    api.ssh_keys = [
        {"id": n, "fingerprint": f"aa:{n:02x}", "public_key": "ssh-ed25519 AAAA", "name": f"k{n}"}
        for n in range(1, 6)
    ]
    keys = _client(api, time_, per_page=2).ssh_keys()
    assert [k["id"] for k in keys] == [1, 2, 3, 4, 5]
    assert len(api.requests) == 3


# -- create and wait ----------------------------------------------------------------------------


def test_create_then_wait_until_active_with_addresses(time_: FakeTime) -> None:
    addresses = ["198.51.100.10", "198.51.100.11", "198.51.100.12"]
    with DigitalOceanStandin(
        token=TOKEN, active_after=2, public_addresses=addresses, clock=time_.clock
    ) as api:
        provider = _do(region="fra1", size="s-2vcpu-4gb")
        session = _session(api, time_, provider)
        created = session.create(provider.desired_machines("shop", "staging", HOSTS))

        assert [(s.name, s.status, s.public_address) for s in created] == [
            ("shop-staging-db", "new", None),
            ("shop-staging-web-1", "new", None),
            ("shop-staging-web-2", "new", None),
        ]
        running = session.wait_running(created, timeout=300)

        assert [s.id for s in running] == [s.id for s in created]
        assert {s.status for s in running} == {"active"}
        assert sorted(s.public_address or "" for s in running) == addresses
        assert [s.host for s in running] == ["db", "web-1", "web-2"]
        assert time_.sleeps == [2.0, 3.0]  # the poll interval grows
        assert _calls(api, "GET")[:1] == [("GET", "/v2/account/keys", 200)]
        posts = [r.body for r in api.requests if r.method == "POST"]
        assert [p["region"] for p in posts] == ["fra1"] * 3
        assert "stagecraft-host-web-1" in posts[1]["tags"]
        assert api.droplets()[0]["region"] == {"slug": "fra1"}


def test_wait_running_times_out_naming_the_droplets_not_ready(time_: FakeTime) -> None:
    with DigitalOceanStandin(token=TOKEN, active_after=1000, clock=time_.clock) as api:
        session = _session(api, time_)
        slow = session.create(_do().desired_machines("shop", "staging", HOSTS[:1]))
        with pytest.raises(DigitalOceanError) as info:
            session.wait_running(slow, timeout=10)
    assert "not running after 10 s: shop-staging-web-1 (status new, no public IPv4)" in str(
        info.value
    )
    assert time_.sleeps == [2.0, 3.0, 4.5, 0.5]


def test_a_lost_answer_to_a_create_does_not_create_twice(
    api: DigitalOceanStandin, time_: FakeTime
) -> None:
    api.drop(1, processed=True, method="POST")  # created, but the answer never arrives
    session = _session(api, time_)
    [server] = session.create(_do().desired_machines("shop", "staging", HOSTS[:1]))
    assert server.name == "shop-staging-web-1"
    assert len(api.droplets()) == 1
    assert _calls(api)[1:] == [
        ("POST", "/v2/droplets", 0),
        ("GET", "/v2/droplets", 200),  # looked up by name, found: not posted again
    ]
    assert api.requests[-1].query["name"] == "shop-staging-web-1"


def test_a_create_refused_before_processing_is_sent_again(
    api: DigitalOceanStandin, time_: FakeTime
) -> None:
    api.drop(1, method="POST")
    [server] = _session(api, time_).create(_do().desired_machines("shop", "staging", HOSTS[:1]))
    assert [d["id"] for d in api.droplets()] == [int(server.id)]
    assert [r.method for r in api.requests] == ["GET", "POST", "GET", "POST"]


# -- retries --------------------------------------------------------------------------------------


def test_a_429_in_the_middle_waits_until_ratelimit_reset(
    api: DigitalOceanStandin, time_: FakeTime
) -> None:
    for n in range(4):
        api.add_droplet(f"shop-staging-web-{n}", [ENV_TAG])
    client = _client(api, time_, per_page=2)
    first = client.send(ApiRequest("GET", "/v2/droplets", query={"per_page": "2"}))
    api.throttle(1, reset_in=7)
    servers = _session(api, time_, per_page=2).servers("shop", "staging")

    assert len(first["droplets"]) == 2 and len(servers) == 4
    assert time_.sleeps == [7.0]
    statuses = [r.status for r in api.requests]
    assert statuses == [200, 429, 200, 200]


def test_retry_after_wins_over_ratelimit_reset_and_waits_are_capped(
    api: DigitalOceanStandin, time_: FakeTime
) -> None:
    client = _client(api, time_)
    api.throttle(1, reset_in=40, retry_after=3)
    api.throttle(1, reset_in=3600)
    assert client.ssh_keys()[0]["fingerprint"] == STANDIN_KEY["fingerprint"]
    assert time_.sleeps == [3.0, 60.0]


def test_server_errors_are_retried_with_exponential_backoff(
    api: DigitalOceanStandin, time_: FakeTime
) -> None:
    droplet = api.add_droplet("web", [ENV_TAG])
    api.fail(3, status=503)
    assert _client(api, time_).get_droplet(droplet["id"])["name"] == "web"
    assert time_.sleeps == [1.0, 2.0, 4.0]


def test_retries_end_in_a_clear_error(api: DigitalOceanStandin, time_: FakeTime) -> None:
    api.fail(10)
    client = _client(api, time_, retry=RetryPolicy(attempts=3))
    with pytest.raises(DigitalOceanError) as info:
        client.get_droplet(1)
    assert info.value.message == (
        "DigitalOcean failed to answer GET /v2/droplets/1 (500 server_error): "
        "Unexpected server-side error (3 tries)"
    )
    assert info.value.hint and "status.digitalocean.com" in info.value.hint
    assert len(api.requests) == 3


def test_rate_limits_that_do_not_end_are_an_error(
    api: DigitalOceanStandin, time_: FakeTime
) -> None:
    api.throttle(10, reset_in=5)
    with pytest.raises(DigitalOceanError) as info:
        _client(api, time_, retry=RetryPolicy(attempts=2)).ssh_keys()
    assert "kept rate-limiting" in info.value.message
    assert "429 too_many_requests" in info.value.message
    assert "(2 tries)" in info.value.message
    assert info.value.status == 429
    assert time_.sleeps == [5.0]


def test_an_unreachable_api_names_the_host(time_: FakeTime) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = DigitalOceanClient(
        TOKEN, base_url=f"http://127.0.0.1:{port}", sleep=time_.sleep, clock=time_.clock
    )
    with pytest.raises(DigitalOceanError) as info:
        client.ssh_keys()
    assert info.value.message.startswith("cannot reach 127.0.0.1 (")
    assert info.value.hint and API_URL_ENV in info.value.hint
    assert time_.sleeps == [1.0, 2.0, 4.0, 8.0]


# -- errors ---------------------------------------------------------------------------------------


def test_a_refused_token_is_named_by_its_variable_and_never_shown(
    api: DigitalOceanStandin, time_: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "dop_v1_ffffffffffffffffffffffffffffffff"
    client = _client(api, time_, token=wrong, token_env="DIGITALOCEAN_TOKEN")
    api.fail(1)
    with pytest.raises(DigitalOceanError) as info:
        client.get_droplet(1)
    exc = info.value
    assert exc.message == (
        "DigitalOcean refused the token in $DIGITALOCEAN_TOKEN (401 Unauthorized): "
        "Unable to authenticate you"
    )
    assert exc.hint and "read and write scope" in exc.hint and "DIGITALOCEAN_TOKEN" in exc.hint
    shown = [str(exc), exc.hint, repr(exc), repr(client), caplog.text, *map(str, exc.args)]
    assert not [text for text in shown if wrong in text]
    assert exc.status == 401


def test_an_unknown_region_names_the_config_key(api: DigitalOceanStandin, time_: FakeTime) -> None:
    provider = _do(region="mars1")
    with pytest.raises(DigitalOceanError) as info:
        _session(api, time_, provider).create(provider.desired_machines("shop", "staging", HOSTS))
    message = info.value.message
    assert message.startswith(
        "creating droplet shop-staging-db: DigitalOcean rejected "
        "cloud.providers.digitalocean.region (422 unprocessable_entity): "
        "You specified an invalid region for Droplet creation. (request id "
    )
    assert info.value.request_id and info.value.request_id in message
    assert info.value.hint and "`doctl compute region list`" in info.value.hint
    assert api.droplets() == []


def test_an_unknown_size_names_its_key(api: DigitalOceanStandin, time_: FakeTime) -> None:
    provider = _do(size="s-64vcpu-1tb")
    with pytest.raises(DigitalOceanError, match=r"rejected cloud\.providers\.digitalocean\.size "):
        _session(api, time_, provider).create(provider.desired_machines("shop", "staging", HOSTS))


def test_the_droplet_limit_says_what_was_created_and_how_to_go_on(time_: FakeTime) -> None:
    with DigitalOceanStandin(token=TOKEN, droplet_limit=2, clock=time_.clock) as api:
        provider = _do()
        session = _session(api, time_, provider)
        with pytest.raises(DigitalOceanError) as info:
            session.create(provider.desired_machines("shop", "staging", HOSTS))
        assert len(api.droplets()) == 2
    assert info.value.message.startswith(
        "creating droplet shop-staging-web-2 (created before it: shop-staging-db, "
        "shop-staging-web-1): DigitalOcean refused more droplets (422 unprocessable_entity): "
        "creating this/these droplet(s) will exceed your droplet limit"
    )
    assert info.value.hint and "droplet_limit_increase" in info.value.hint


def test_missing_ssh_keys_are_named_before_anything_is_created(
    api: DigitalOceanStandin, time_: FakeTime
) -> None:
    absent = "0f:0f:0f:0f:0f:0f:0f:0f:0f:0f:0f:0f:0f:0f:0f:0f"
    provider = _do(ssh_keys=[512189, STANDIN_KEY["fingerprint"].upper(), absent, 42])
    with pytest.raises(DigitalOceanError) as info:
        _session(api, time_, provider).create(provider.desired_machines("shop", "staging", HOSTS))
    assert info.value.message.startswith(
        f"SSH keys {absent}, 42 in cloud.providers.digitalocean.ssh_keys are not in the "
        "DigitalOcean account (it has: 512189 'stand-in key'"
    )
    assert _calls(api) == [("GET", "/v2/account/keys", 200)]


def test_no_ssh_keys_at_all_is_refused(api: DigitalOceanStandin, time_: FakeTime) -> None:
    provider = _do(ssh_keys=[])
    with pytest.raises(ProviderError, match=r"ssh_keys is empty"):
        _session(api, time_, provider).create(provider.desired_machines("shop", "staging", HOSTS))
    assert api.requests == []


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_names_the_variable_to_set(token: str | None) -> None:
    with pytest.raises(ProviderError) as info:
        _do(token_env="SHOP_DO_TOKEN").open(token)
    assert info.value.message == "no DigitalOcean API token: $SHOP_DO_TOKEN is not set or empty"
    assert info.value.hint and "export it as SHOP_DO_TOKEN" in info.value.hint


def test_open_uses_the_api_url_from_the_environment(
    api: DigitalOceanStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.add_droplet("shop-staging-web-1", [ENV_TAG, "stagecraft-host-web-1"])
    monkeypatch.setenv(API_URL_ENV, api.url)
    session = _do().open(TOKEN)
    assert [s.host for s in session.servers("shop", "staging")] == ["web-1"]
    assert TOKEN not in repr(session)
    monkeypatch.setenv(API_URL_ENV, "http://api.example.com")
    with pytest.raises(ProviderError, match="plain http"):
        _do().open(TOKEN)


# -- destroy --------------------------------------------------------------------------------------


def test_destroy_deletes_the_environment_droplets(
    api: DigitalOceanStandin, time_: FakeTime
) -> None:
    api.add_droplet("shop-staging-web-1", [ENV_TAG])
    api.add_droplet("shop-staging-web-2", [ENV_TAG])
    keep = api.add_droplet("shop-prod-web-1", ["stagecraft-shop-prod"])
    session = _session(api, time_)
    session.destroy(session.servers("shop", "staging"))
    assert [d["id"] for d in api.droplets()] == [keep["id"]]
    assert [r.status for r in api.requests if r.method == "DELETE"] == [204, 204]


def test_destroy_refuses_an_untagged_server(api: DigitalOceanStandin, time_: FakeTime) -> None:
    ours = api.add_droplet("shop-staging-web-1", [ENV_TAG])
    stray = api.add_droplet("shop-staging-stray", [])
    session = _session(api, time_)
    [listed] = session.servers("shop", "staging")
    untagged = Server(str(stray["id"]), "shop-staging-stray", "active", ())
    with pytest.raises(ProviderError) as info:
        session.destroy([listed, untagged])
    assert info.value.message == (
        f"refusing to destroy droplet shop-staging-stray (id {stray['id']}): "
        "not tagged stagecraft-shop-staging"
    )
    assert {d["id"] for d in api.droplets()} == {ours["id"], stray["id"]}
    assert _calls(api, "DELETE") == []


def test_destroy_checks_the_tags_the_droplet_has_now(
    api: DigitalOceanStandin, time_: FakeTime
) -> None:
    other = api.add_droplet("someone-elses", ["production"])
    session = _session(api, time_)
    session.servers("shop", "staging")
    claimed = Server(str(other["id"]), "someone-elses", "active", (ENV_TAG,))  # a stale copy
    with pytest.raises(ProviderError, match="refusing to destroy droplet someone-elses"):
        session.destroy([claimed])
    assert _calls(api, "DELETE") == []


def test_destroy_refuses_everything_before_an_environment_was_listed(
    api: DigitalOceanStandin, time_: FakeTime
) -> None:
    droplet = api.add_droplet("shop-staging-web-1", [ENV_TAG])
    server = Server(str(droplet["id"]), "shop-staging-web-1", "active", (ENV_TAG,))
    with pytest.raises(
        ProviderError, match=r"not tagged for an environment \(none was listed yet\)"
    ):
        _session(api, time_).destroy([server])
    assert len(api.droplets()) == 1


def test_destroying_a_droplet_already_gone_is_fine(
    api: DigitalOceanStandin, time_: FakeTime
) -> None:
    api.add_droplet("shop-staging-web-1", [ENV_TAG])
    session = _session(api, time_)
    servers = session.servers("shop", "staging")
    session.destroy(servers)
    session.destroy(servers)
    assert [r.status for r in api.requests if r.method in ("GET", "DELETE")][-2:] == [404, 404]
