"""A small DigitalOcean API v2 client over the standard library (``urllib``).

The ``digitalocean`` cloud (:mod:`.cloud_digitalocean`) describes its requests as
:class:`~stagecraft.providers.cloud.ApiRequest` values; this client sends them,
and the few requests it needs on its own, to https://api.digitalocean.com:

- ``GET /v2/droplets?tag_name=...`` (and ``?name=...``), following
  ``links.pages.next`` until the last page (:meth:`DigitalOceanClient.collect`);
- ``POST /v2/droplets``, ``GET /v2/droplets/{id}``, ``DELETE /v2/droplets/{id}``;
- ``GET /v2/account/keys``, to check the configured SSH keys exist before any
  droplet is created (:meth:`DigitalOceanClient.check_ssh_keys`).

The token travels only in the ``Authorization: Bearer`` header, to the API URL
and never to a redirect target; it is in no message, ``repr`` or log line.

Retries (:class:`RetryPolicy`): a 429 waits for the ``retry-after`` header, else
for the ``ratelimit-reset`` time (Unix epoch seconds), at most ``max_wait``
seconds; a 5xx, a reset connection or a timeout waits ``backoff`` seconds,
doubling each time. A ``POST`` that may have been carried out (a 5xx, a reset)
is not repeated blindly: the droplet is looked up by name first, so a retry never
creates it twice. Every failure ends as a :class:`DigitalOceanError` that quotes
DigitalOcean's message and ``request_id`` and says how to fix it.

``STAGECRAFT_DIGITALOCEAN_API_URL`` replaces the API URL (tests point it at
:mod:`stagecraft.testing.digitalocean_standin`; an API-compatible proxy works too).
Plain ``http://`` is accepted only for this machine (the token would travel in
clear).

Example::

    client = DigitalOceanClient(os.environ["DO_TOKEN"])
    client.check_ssh_keys(["3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"])
    droplet = client.create_droplet(ApiRequest("POST", "/v2/droplets", body))
    client.get_droplet(droplet["id"])["status"]      # 'new', then 'active'
    client.collect(ApiRequest("GET", "/v2/droplets", query={"tag_name": "web"}), "droplets")
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from stagecraft import __version__
from stagecraft.errors import ProviderError
from stagecraft.providers.cloud import ApiRequest
from stagecraft.providers.secrets import SecretValue

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.digitalocean.com"
API_URL_ENV = "STAGECRAFT_DIGITALOCEAN_API_URL"
"""Replaces :data:`DEFAULT_API_URL`: for tests (the stand-in server) and API proxies."""

DROPLETS = "/v2/droplets"
SSH_KEYS = "/v2/account/keys"
MAX_PER_PAGE = 200  # the API's own maximum
MAX_PAGES = 1000
CONFIG = "cloud.providers.digitalocean"
TOKEN_URL = "https://cloud.digitalocean.com/account/api/tokens"
KEYS_URL = "https://cloud.digitalocean.com/account/security"
LIMIT_URL = "https://cloud.digitalocean.com/account/team/droplet_limit_increase"
STATUS_URL = "https://status.digitalocean.com"

# Failures of the transport: refused, reset, timed out, name not resolved, garbled reply.
_NETWORK_ERRORS = (OSError, http.client.HTTPException)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a request is retried."""

    attempts: int = 5
    """Tries per request, the first included."""
    backoff: float = 1.0
    """First wait after a 5xx or a network failure, in seconds; doubled each time."""
    max_wait: float = 60.0
    """Longest single wait, rate limits included."""


class DigitalOceanError(ProviderError):
    """DigitalOcean refused a request, or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        error_id: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.error_id = error_id
        self.request_id = request_id

    def about(self, context: str) -> DigitalOceanError:
        """The same error, its message prefixed with ``context``."""
        return DigitalOceanError(
            f"{context}: {self.message}",
            hint=self.hint,
            status=self.status,
            error_id=self.error_id,
            request_id=self.request_id,
        )


def missing_token(token_env: str) -> DigitalOceanError:
    """The error for an unset or empty token variable."""
    return DigitalOceanError(
        f"no DigitalOcean API token: ${token_env} is not set or empty",
        hint=f"create a personal access token with read and write scope at {TOKEN_URL} and "
        f"export it as {token_env} (in CI: a secret exposed to the job as {token_env}); "
        f"{CONFIG}.token_env names another variable",
    )


def api_url(environ: Mapping[str, str] | None = None) -> str:
    """The API URL: ``$STAGECRAFT_DIGITALOCEAN_API_URL`` when set, else the real API."""
    env = os.environ if environ is None else environ
    return env.get(API_URL_ENV) or DEFAULT_API_URL


def check_api_url(url: str) -> str:
    """``url`` without a trailing ``/``; an error unless https, or http to this machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DigitalOceanError(
            f"DigitalOcean API URL {url!r} is not an http(s) URL",
            hint=f"unset {API_URL_ENV} to use {DEFAULT_API_URL}",
        )
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise DigitalOceanError(
            f"DigitalOcean API URL {url!r} is plain http: the token would travel unencrypted",
            hint=f"use https, or unset {API_URL_ENV} (plain http is for 127.0.0.1 and localhost)",
        )
    return url.rstrip("/")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class _Reply:
    """One HTTP answer, headers keyed in lower case."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def error_fields(self) -> tuple[str | None, str, str | None]:
        """DigitalOcean's error body as (id, message, request_id)."""
        try:
            data = json.loads(self.body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            text = self.body.decode("utf-8", "replace").strip()
            return None, text[:200] or http.client.responses.get(self.status, ""), None
        rid = data.get("request_id") or self.headers.get("x-request-id")
        error_id = data.get("id")
        return (
            None if error_id is None else str(error_id),
            str(data.get("message") or ""),
            None if rid is None else str(rid),
        )


@dataclass(frozen=True)
class _Retry:
    """A failed attempt worth another one."""

    wait: float
    reason: str
    maybe_done: bool  # the request may have been carried out (a 5xx, a reset)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The API does not redirect; a redirect is answered as it is, never followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener(base_url: str) -> urllib.request.OpenerDirector:
    """Redirects not followed; ``HTTPS_PROXY`` honoured, except for this machine."""
    handlers: list[urllib.request.BaseHandler] = [_NoRedirects()]
    if _loopback(urlsplit(base_url).hostname or ""):
        handlers.append(urllib.request.ProxyHandler({}))  # a stand-in is never behind a proxy
    return urllib.request.build_opener(*handlers)


class DigitalOceanClient:
    """The DigitalOcean API v2, as the ``digitalocean`` cloud uses it.

    ``per_page`` is the page size of listings (1 to 200; it replaces a request's
    own ``per_page``: tests page through a few droplets with ``per_page=2``).
    ``sleep`` and ``clock`` (Unix time, for ``ratelimit-reset``) are injectable so
    tests do not wait.
    """

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_API_URL,
        token_env: str = "DO_TOKEN",
        per_page: int | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        timeout: float = 30.0,
    ) -> None:
        if not token:
            raise missing_token(token_env)
        self._token = SecretValue(token, name=token_env)
        self.base_url = check_api_url(base_url)
        self.token_env = token_env
        self.per_page = per_page
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._opener = _opener(self.base_url)

    def __repr__(self) -> str:
        return f"DigitalOceanClient({self.base_url!r}, token_env={self.token_env!r})"

    @property
    def host(self) -> str:
        """The API's host name (``api.digitalocean.com``)."""
        return urlsplit(self.base_url).hostname or self.base_url

    # -- endpoints -----------------------------------------------------------------------

    def send(self, request: ApiRequest) -> Any:
        """Send one request; its JSON answer (``{}`` for a 204)."""
        return self._call(request.method, request.path, query=request.query, body=request.body)

    def collect(self, request: ApiRequest, key: str) -> list[dict[str, Any]]:
        """The ``key`` list of every page of a listing, following ``links.pages.next``."""
        query = {"per_page": str(MAX_PER_PAGE), **request.query}
        if self.per_page is not None:
            query["per_page"] = str(self.per_page)
        path, items = request.path, []
        for _ in range(MAX_PAGES):
            page = self._call("GET", path, query=query)
            items += _listed(page, key, path)
            link = ((page.get("links") or {}).get("pages") or {}).get("next")
            if not link:
                return items
            path, query = _next_page(link, query)
        raise DigitalOceanError(f"GET {request.path}: more than {MAX_PAGES} pages of {key}")

    def create_droplet(self, request: ApiRequest) -> dict[str, Any]:
        """``POST /v2/droplets``: the new droplet (status ``new``, no addresses yet)."""
        body = dict(request.body or {})
        answer = self._call("POST", request.path, body=body, recover=lambda: self._created(body))
        return _member(answer, "droplet", f"POST {request.path}")

    def get_droplet(self, droplet_id: int | str) -> dict[str, Any]:
        """``GET /v2/droplets/{id}``."""
        path = _droplet_path(droplet_id)
        return _member(self._call("GET", path), "droplet", f"GET {path}")

    def delete_droplet(self, droplet_id: int | str) -> bool:
        """``DELETE /v2/droplets/{id}``; False when the droplet was already gone (404)."""
        try:
            self._call("DELETE", _droplet_path(droplet_id))
        except DigitalOceanError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def ssh_keys(self) -> list[dict[str, Any]]:
        """``GET /v2/account/keys``: the account's SSH keys (id, fingerprint, name, public_key)."""
        return self.collect(ApiRequest("GET", SSH_KEYS), "ssh_keys")

    def check_ssh_keys(self, wanted: Sequence[int | str]) -> None:
        """An error naming every key of ``wanted`` (IDs or fingerprints) the account lacks."""
        if not wanted:
            return
        keys = self.ssh_keys()
        known = {str(k.get("id")) for k in keys} | {
            str(k.get("fingerprint", "")).lower() for k in keys
        }
        missing = [str(key) for key in wanted if str(key).lower() not in known]
        if missing:
            raise _missing_keys(missing, keys)

    # -- one request, with retries -------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        recover: Callable[[], dict[str, Any] | None] | None = None,
    ) -> dict[str, Any]:
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(1, self.retry.attempts + 1):
            outcome = self._attempt(method, path, url, data, attempt)
            if isinstance(outcome, _Reply):
                return _json(outcome, method, path)
            logger.info(
                "DigitalOcean %s %s: %s; try %d of %d in %.0f s",
                *(method, path, outcome.reason, attempt + 1, self.retry.attempts, outcome.wait),
            )
            self._sleep(outcome.wait)
            if outcome.maybe_done and recover is not None and (found := recover()) is not None:
                return found
        raise AssertionError("the last attempt returns or raises")

    def _attempt(
        self, method: str, path: str, url: str, data: bytes | None, attempt: int
    ) -> _Reply | _Retry:
        last = attempt >= self.retry.attempts
        try:
            reply = self._send(method, url, data)
        except _NETWORK_ERRORS as exc:
            if last:
                raise self._unreachable(exc, attempt) from exc
            return _Retry(self._backoff(attempt), _reason(exc), maybe_done=not _unsent(exc))
        if reply.status < 300:
            return reply
        if last or not (reply.status == 429 or reply.status >= 500):
            raise self._refused(method, path, reply, attempt)
        if reply.status == 429:
            return _Retry(self._rate_limit_wait(reply.headers), "rate limited", maybe_done=False)
        return _Retry(self._backoff(attempt), f"answered {reply.status}", maybe_done=True)

    def _send(self, method: str, url: str, data: bytes | None) -> _Reply:
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", f"stagecraft/{__version__}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        # Unredirected: the header goes to this URL only, never to where it points.
        request.add_unredirected_header("Authorization", f"Bearer {self._token.reveal()}")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return _Reply(response.status, _lowered(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return _Reply(exc.code, _lowered(exc.headers), exc.read())

    def _backoff(self, attempt: int) -> float:
        return min(self.retry.backoff * 2.0 ** (attempt - 1), self.retry.max_wait)

    def _rate_limit_wait(self, headers: Mapping[str, str]) -> float:
        """Seconds until a rate-limited request may be sent again (1 s at least)."""
        wait = _number(headers.get("retry-after"))
        if wait is None:
            reset = _number(headers.get("ratelimit-reset"))
            wait = self.retry.backoff if reset is None else reset - self._clock()
        return min(max(wait, 1.0), self.retry.max_wait)

    def _created(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """The droplet an uncertain ``POST`` created: same name, every requested tag."""
        query = {"name": str(body.get("name", ""))}
        wanted = set(body.get("tags") or ())
        for droplet in self.collect(ApiRequest("GET", DROPLETS, query=query), "droplets"):
            if wanted <= set(droplet.get("tags") or ()):
                logger.info("DigitalOcean created droplet %s after all", droplet.get("name"))
                return {"droplet": droplet}
        return None

    # -- errors ----------------------------------------------------------------------------

    def _unreachable(self, exc: BaseException, attempts: int) -> DigitalOceanError:
        hint = "check the network connection, DNS and any HTTPS_PROXY setting"
        if self.base_url != DEFAULT_API_URL:
            hint += f"; {API_URL_ENV} points at {self.base_url}"
        return DigitalOceanError(
            f"cannot reach {self.host} ({_reason(exc)}; {_tries(attempts)})", hint=hint
        )

    def _refused(self, method: str, path: str, reply: _Reply, attempts: int) -> DigitalOceanError:
        error_id, message, request_id = reply.error_fields()
        quoted = self._scrub(message) + (f" (request id {request_id})" if request_id else "")
        refusal = _Refusal(reply.status, error_id, quoted, f"{method} {path}", self.token_env)
        text, hint = refusal.explain()
        if reply.status == 429 or reply.status >= 500:
            text += f" ({_tries(attempts)})"
        return DigitalOceanError(
            text, hint=hint, status=reply.status, error_id=error_id, request_id=request_id
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._token.reveal(), "***")


@dataclass(frozen=True)
class _Refusal:
    """An error answer, to be told to the user (``quoted``: DigitalOcean's own message)."""

    status: int
    error_id: str | None
    quoted: str
    request: str  # "POST /v2/droplets"
    token_env: str

    @property
    def word(self) -> str:
        reason = self.error_id or http.client.responses.get(self.status, "error")
        return f"{self.status} {reason}"

    def explain(self) -> tuple[str, str | None]:
        """The message and the hint."""
        lowered = self.quoted.lower()
        if self.status == 401:
            return self._unauthorized()
        if self.status in (403, 422) and "droplet limit" in lowered:
            return self._quota()
        if self.status == 403:
            return self._forbidden()
        if self.status == 422:
            return self._unprocessable()
        if self.status == 429:
            return self._rate_limited()
        if self.status >= 500:
            return self._failed()
        return f"DigitalOcean refused {self.request} ({self.word}): {self.quoted}", None

    def _unauthorized(self) -> tuple[str, str]:
        return (
            f"DigitalOcean refused the token in ${self.token_env} ({self.word}): {self.quoted}",
            f"the token is wrong, expired or revoked: create a personal access token with "
            f"read and write scope at {TOKEN_URL} and put it in {self.token_env}",
        )

    def _quota(self) -> tuple[str, str]:
        return (
            f"DigitalOcean refused more droplets ({self.word}): {self.quoted}",
            "destroy droplets you no longer need, or ask for a higher droplet limit at "
            + LIMIT_URL,
        )

    def _forbidden(self) -> tuple[str, str]:
        return (
            f"DigitalOcean does not let the token in ${self.token_env} {self.request} "
            f"({self.word}): {self.quoted}",
            "give the token read and write scope (or droplet:create, droplet:read, "
            f"droplet:delete and ssh_key:read) at {TOKEN_URL}",
        )

    def _unprocessable(self) -> tuple[str, str]:
        lowered = self.quoted.lower()
        keys = [key for key, words in _CONFIG_WORDS.items() if any(w in lowered for w in words)]
        if not keys:
            return (
                f"DigitalOcean rejected the droplet ({self.word}): {self.quoted}",
                f"check {CONFIG} (region, size, image, ssh_keys, tags, vpc_uuid) in stagecraft.yml",
            )
        names = " and ".join(f"{CONFIG}.{key}" for key in keys)
        listings = ", ".join(f"`doctl compute {_LISTINGS[key]} list`" for key in keys)
        return (
            f"DigitalOcean rejected {names} ({self.word}): {self.quoted}",
            f"set {names} in stagecraft.yml to what your account offers ({listings})",
        )

    def _rate_limited(self) -> tuple[str, str]:
        return (
            f"DigitalOcean kept rate-limiting the requests ({self.word}): {self.quoted}",
            "wait a minute and run the command again; a token may send 250 requests a minute "
            "and 5,000 an hour, other tools using the same token included",
        )

    def _failed(self) -> tuple[str, str]:
        return (
            f"DigitalOcean failed to answer {self.request} ({self.word}): {self.quoted}",
            f"DigitalOcean may be having trouble ({STATUS_URL}); try again later",
        )


# The config keys a 422 message can be about, by the words that name them there
# ("You specified an invalid size for Droplet creation.", "... are invalid key identifiers").
_CONFIG_WORDS = {
    "region": ("region",),
    "size": ("size",),
    "image": ("image",),
    "ssh_keys": ("ssh key", "key identifier"),
}
_LISTINGS = {"region": "region", "size": "size", "image": "image", "ssh_keys": "ssh-key"}


def _missing_keys(missing: Sequence[str], keys: Sequence[Mapping[str, Any]]) -> DigitalOceanError:
    have = ", ".join(f"{k.get('id')} {k.get('name')!r} ({k.get('fingerprint')})" for k in keys)
    return DigitalOceanError(
        f"SSH key{'s' if len(missing) > 1 else ''} {', '.join(missing)} in {CONFIG}.ssh_keys "
        f"{'are' if len(missing) > 1 else 'is'} not in the DigitalOcean account "
        f"(it has: {have or 'no keys'})",
        hint=f"add the public key at {KEYS_URL} (or `doctl compute ssh-key import`), or list "
        f"the ID or fingerprint of a key the account has in {CONFIG}.ssh_keys",
    )


def _json(reply: _Reply, method: str, path: str) -> dict[str, Any]:
    if not reply.body.strip():
        return {}
    try:
        data = json.loads(reply.body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise DigitalOceanError(
            f"DigitalOcean answered {method} {path} with something that is not a JSON object",
            hint=f"if {API_URL_ENV} is set, check that it points at the DigitalOcean API",
        )
    return data


def _member(answer: Mapping[str, Any], key: str, what: str) -> dict[str, Any]:
    value = answer.get(key)
    if not isinstance(value, dict):
        raise DigitalOceanError(f"DigitalOcean's answer to {what} has no {key!r} object")
    return value


def _listed(page: Mapping[str, Any], key: str, path: str) -> list[dict[str, Any]]:
    items = page.get(key)
    if not isinstance(items, list):
        raise DigitalOceanError(f"DigitalOcean's answer to GET {path} has no {key!r} list")
    return [item for item in items if isinstance(item, dict)]


def _next_page(link: str, query: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """Path and query of a ``links.pages.next`` URL, sent to our own API URL.

    Only its path from ``/v2/`` on and its query are used: the token goes nowhere
    else, and a proxy in front of the API may prefix paths. Parameters the link
    leaves out (a filter) are kept from the previous page.
    """
    parts = urlsplit(link)
    start = parts.path.find("/v2/")
    path = parts.path[start:] if start >= 0 else parts.path
    return path, {**query, **dict(parse_qsl(parts.query))}


def _droplet_path(droplet_id: int | str) -> str:
    text = str(droplet_id)
    if not text.isdigit():
        raise DigitalOceanError(f"{text!r} is not a DigitalOcean droplet ID")
    return f"{DROPLETS}/{text}"


def _lowered(headers: Any) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in headers.items()}


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _unsent(exc: BaseException) -> bool:
    """True when the request surely never reached the API (refused, name not resolved)."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)


def _reason(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(reason, http.client.RemoteDisconnected | ConnectionResetError):
        return "connection reset"
    return str(reason) or type(reason).__name__


def _tries(attempts: int) -> str:
    return "1 try" if attempts == 1 else f"{attempts} tries"
