"""A local stand-in for the DigitalOcean API v2: the endpoints Stagecraft uses, as documented.

It serves, on ``127.0.0.1`` and a free port, exactly what
:mod:`stagecraft.providers.builtin.digitalocean_api` sends, with the shapes of the
API reference (https://docs.digitalocean.com/reference/api/digitalocean/):

- **Droplets** -- list (``GET /v2/droplets``, filtered by ``tag_name`` or
  ``name``), create (``POST /v2/droplets``: ``202`` with ``droplet`` and
  ``links.actions``), retrieve (``GET /v2/droplets/{id}``) and delete
  (``DELETE /v2/droplets/{id}``: ``204``, no body). A droplet is ``new`` with no
  networks when created and turns ``active``, with a public and a private IPv4,
  after ``active_after`` GETs that show it.
- **SSH Keys** -- list (``GET /v2/account/keys``): ``ssh_keys`` with ``id``,
  ``fingerprint``, ``public_key``, ``name``.
- **Links & Pagination** -- ``page`` and ``per_page`` (default 20, at most 200);
  ``links.pages`` holds ``first``/``prev`` and ``next``/``last`` where they make
  sense, and ``meta.total`` the count.
- **Rate Limits** -- ``ratelimit-limit``, ``ratelimit-remaining`` and
  ``ratelimit-reset`` (Unix time the oldest request of the hour expires) on every
  answer; :meth:`DigitalOceanStandin.throttle` makes the next requests ``429``
  (with ``retry-after`` when asked), as the burst limit does.
- **Errors** -- ``{"id", "message"}`` bodies (``request_id`` too on a 422, as
  in the reference's example): ``401`` for a missing or wrong token (spelled as
  the live API does, ``"Unauthorized"``; the reference's example writes
  ``unauthorized``), ``404 not_found``, ``422 unprocessable_entity`` for an
  unknown region, size, image or SSH key and past the account's droplet limit
  (the messages the live API sends), ``500 server_error`` and dropped
  connections on demand (:meth:`~DigitalOceanStandin.fail`,
  :meth:`~DigitalOceanStandin.drop`).

Every request is logged (:attr:`DigitalOceanStandin.requests`: method, path,
query, status) and the public addresses handed out are configurable, so tests can
map droplets onto sandbox hosts.

Example::

    from stagecraft.providers.builtin.digitalocean_api import DigitalOceanClient

    with DigitalOceanStandin(token="t0ken", public_addresses=["198.51.100.7"]) as api:
        client = DigitalOceanClient("t0ken", base_url=api.url)
        api.throttle(1, reset_in=3)                      # the next request is a 429
        client.get_droplet(api.add_droplet("web-1")["id"])
        assert [r.status for r in api.requests] == [429, 200]
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

KNOWN_REGIONS = ("ams3", "blr1", "fra1", "lon1", "nyc1", "nyc3", "sfo3", "sgp1", "syd1", "tor1")
KNOWN_SIZES = (
    "s-1vcpu-512mb-10gb",
    "s-1vcpu-1gb",
    "s-1vcpu-2gb",
    "s-2vcpu-2gb",
    "s-2vcpu-4gb",
    "s-4vcpu-8gb",
    "s-8vcpu-16gb",
)
KNOWN_IMAGES = ("ubuntu-24-04-x64", "ubuntu-22-04-x64", "debian-12-x64", "rockylinux-9-x64")
STANDIN_KEY: Mapping[str, Any] = {
    "id": 512189,
    "fingerprint": "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa",
    "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN0YWdlY3JhZnQtc3RhbmQtaW4 standin",
    "name": "stand-in key",
}
"""The account's one SSH key by default (the fingerprint the provider docs use)."""

# Errors: the ids and messages of the API reference and of the live API.
UNAUTHORIZED = {"id": "Unauthorized", "message": "Unable to authenticate you"}
NOT_FOUND = {"id": "not_found", "message": "The resource you requested could not be found."}
RATE_LIMITED = {"id": "too_many_requests", "message": "API Rate limit exceeded."}
SERVER_ERROR = {"id": "server_error", "message": "Unexpected server-side error"}
DROPLET_LIMIT = "creating this/these droplet(s) will exceed your droplet limit"

HOUR = 3600.0
_DROPLET_PATH = re.compile(r"^/v2/droplets/(\d+)$")

AddressSource = Sequence[str] | Callable[[Mapping[str, Any]], str]
"""Public IPv4 addresses in the order handed out, or a function of the droplet (name, tags)."""


@dataclass(frozen=True)
class StandinRequest:
    """One request the stand-in received, as the request log keeps it."""

    method: str
    path: str
    query: dict[str, str]
    status: int  # 0: the connection was dropped without an answer
    body: Any = None


@dataclass(frozen=True)
class _Fault:
    """An answer forced on the next request (see ``throttle``, ``fail``, ``drop``)."""

    kind: Literal["throttle", "fail", "drop"]
    status: int = 0
    reset_in: float = 0.0
    retry_after: int | None = None
    processed: bool = False  # drop: carry the request out, then drop the answer
    method: str | None = None  # only a request with this method takes the fault


@dataclass
class _Droplet:
    data: dict[str, Any]
    gets_left: int


class DigitalOceanStandin:
    """The DigitalOcean API v2 stand-in; a context manager serving at :attr:`url`.

    ``token`` is the one accepted bearer token. ``active_after``: the number of
    GETs (retrieve or list) that still show a new droplet as ``new``.
    ``droplet_limit``: the account's limit (a create past it is a 422).
    ``public_addresses``: see :data:`AddressSource` (default: ``203.0.113.N``,
    a documentation range). ``clock``: Unix time, for ``ratelimit-reset`` and
    ``created_at``.
    """

    def __init__(
        self,
        *,
        token: str = "standin-token",
        active_after: int = 1,
        droplet_limit: int = 25,
        ssh_keys: Iterable[Mapping[str, Any]] = (STANDIN_KEY,),
        public_addresses: AddressSource | None = None,
        regions: Sequence[str] = KNOWN_REGIONS,
        sizes: Sequence[str] = KNOWN_SIZES,
        images: Sequence[str] = KNOWN_IMAGES,
        rate_limit: int = 5000,
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
    ) -> None:
        self.token = token
        self.active_after = active_after
        self.droplet_limit = droplet_limit
        self.ssh_keys = [dict(key) for key in ssh_keys]
        self.regions, self.sizes, self.images = tuple(regions), tuple(sizes), tuple(images)
        self.rate_limit = rate_limit
        self._addresses = public_addresses
        self._clock = clock
        self._host = host
        self._lock = threading.Lock()
        self._droplets: dict[int, _Droplet] = {}
        self._next_id = 3164444
        self._handed_out = 0
        self._faults: deque[_Fault] = deque()
        self._log: list[StandinRequest] = []
        self._times: deque[float] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> DigitalOceanStandin:
        """Serve in a background thread; :attr:`url` is set from here on."""
        self._server = ThreadingHTTPServer((self._host, 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://{self._host}:{self._server.server_address[1]}"
        # A short poll interval: ``stop`` waits for the loop to notice (0.5 s by default).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> DigitalOceanStandin:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests arrange and read -----------------------------------------------------------

    def throttle(
        self,
        count: int,
        *,
        reset_in: float = 30.0,
        retry_after: int | None = None,
        method: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests ``429 too_many_requests`` (Rate Limits).

        Their ``ratelimit-reset`` is ``reset_in`` seconds from now and
        ``ratelimit-remaining`` 0; ``retry_after`` adds the burst limit's header.
        ``method`` limits it to requests of that method.
        """
        fault = _Fault("throttle", 429, reset_in=reset_in, retry_after=retry_after, method=method)
        self._add_faults(fault, count)

    def fail(self, count: int, status: int = 500, *, method: str | None = None) -> None:
        """Answer the next ``count`` requests (``method`` ones) with ``server_error``."""
        self._add_faults(_Fault("fail", status, method=method), count)

    def drop(self, count: int, *, processed: bool = False, method: str | None = None) -> None:
        """Close the next ``count`` connections without an answer (a reset, to the client).

        With ``processed`` the request is carried out first (a droplet is created),
        as when an answer is lost on the way back. ``method`` limits it to, say, POSTs.
        """
        self._add_faults(_Fault("drop", processed=processed, method=method), count)

    def add_droplet(
        self,
        name: str,
        tags: Iterable[str] = (),
        *,
        status: str = "active",
        region: str = "fra1",
        size: str = "s-1vcpu-1gb",
        image: str = "ubuntu-24-04-x64",
    ) -> dict[str, Any]:
        """A droplet that already exists in the account (not logged as a request)."""
        body = {"name": name, "tags": list(tags), "region": region, "size": size, "image": image}
        with self._lock:
            droplet = self._new_droplet(body)
            if status != "new":
                self._activate(droplet, status)
            return _copy(droplet.data)

    def droplets(self) -> list[dict[str, Any]]:
        """Every droplet of the account, as the API shows it (without counting as a GET)."""
        with self._lock:
            return [_copy(d.data) for d in self._droplets.values()]

    @property
    def requests(self) -> list[StandinRequest]:
        """Every request received so far, in order."""
        with self._lock:
            return list(self._log)

    # -- serving ---------------------------------------------------------------------------

    def _add_faults(self, fault: _Fault, count: int) -> None:
        with self._lock:
            self._faults.extend([fault] * count)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        query = dict(parse_qsl(parts.query))
        body = _read_json(request)
        with self._lock:
            self._times.append(self._clock())
            fault = self._take_fault(request.command)
            status, payload, headers = self._answer(request, parts.path, query, body, fault)
            self._log.append(StandinRequest(request.command, parts.path, query, status, body))
            headers = {**self._rate_headers(), **headers}
        if fault is not None and fault.kind == "drop":
            request.close_connection = True
            return
        _respond(request, status, payload, headers)

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method in (None, method):
                self._faults.remove(fault)
                return fault
        return None

    def _answer(
        self,
        request: BaseHTTPRequestHandler,
        path: str,
        query: dict[str, str],
        body: Any,
        fault: _Fault | None,
    ) -> tuple[int, Any, dict[str, str]]:
        if fault is not None and not (fault.kind == "drop" and fault.processed):
            return self._fault_answer(fault)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            status, payload = 401, UNAUTHORIZED
        else:
            status, payload = self._route(request.command, path, query, body)
        return (0 if fault is not None else status), payload, {}

    def _fault_answer(self, fault: _Fault) -> tuple[int, Any, dict[str, str]]:
        if fault.kind == "drop":
            return 0, None, {}
        if fault.kind == "fail":
            return fault.status, SERVER_ERROR, {}
        headers = {
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(int(self._clock() + fault.reset_in)),
        }
        if fault.retry_after is not None:
            headers["retry-after"] = str(fault.retry_after)
        return 429, RATE_LIMITED, headers

    def _rate_headers(self) -> dict[str, str]:
        """Rate Limits: each request counts for one hour from when it was made."""
        now = self._clock()
        while self._times and self._times[0] <= now - HOUR:
            self._times.popleft()
        oldest = self._times[0] if self._times else now
        return {
            "ratelimit-limit": str(self.rate_limit),
            "ratelimit-remaining": str(max(self.rate_limit - len(self._times), 0)),
            "ratelimit-reset": str(int(oldest + HOUR)),
        }

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if path == "/v2/droplets" and method == "GET":
            return 200, self._list_droplets(path, query)
        if path == "/v2/droplets" and method == "POST":
            return self._create(body)
        if (match := _DROPLET_PATH.match(path)) and method in ("GET", "DELETE"):
            return self._one_droplet(method, int(match[1]))
        if path == "/v2/account/keys" and method == "GET":
            return 200, self._page([_copy(k) for k in self.ssh_keys], "ssh_keys", path, query)
        return 404, NOT_FOUND

    # -- Droplets ----------------------------------------------------------------------------

    def _list_droplets(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        """Droplets list: ``tag_name`` keeps the tagged ones, ``name`` exact names (any case)."""
        found = list(self._droplets.values())
        if "tag_name" in query:
            found = [d for d in found if query["tag_name"] in d.data["tags"]]
        if "name" in query:
            found = [d for d in found if d.data["name"].lower() == query["name"].lower()]
        page = self._page(found, "droplets", path, query)
        page["droplets"] = [self._seen(d) for d in page["droplets"]]
        return page

    def _one_droplet(self, method: str, droplet_id: int) -> tuple[int, Any]:
        """Droplets retrieve and delete."""
        droplet = self._droplets.get(droplet_id)
        if droplet is None:
            return 404, NOT_FOUND
        if method == "DELETE":
            del self._droplets[droplet_id]
            return 204, None
        return 200, {"droplet": self._seen(droplet)}

    def _create(self, body: Any) -> tuple[int, Any]:
        """Droplets create: checked like the live API, then ``new`` with no networks."""
        problem = self._invalid(body) if isinstance(body, dict) else "request body is not JSON"
        if problem is not None:
            return 422, {"id": "unprocessable_entity", "message": problem, "request_id": _rid()}
        droplet = self._new_droplet(body)
        action = 7515 + droplet.data["id"] % 1000
        links = {
            "actions": [{"id": action, "rel": "create", "href": f"{self.url}/v2/actions/{action}"}]
        }
        return 202, {"droplet": _copy(droplet.data), "links": links}

    def _invalid(self, body: Mapping[str, Any]) -> str | None:
        """What the live API says about a create body it refuses (None: accepted)."""
        if not isinstance(body.get("name"), str) or not body["name"]:
            return "Name is required"  # the stand-in's own wording
        if "region" in body and body["region"] not in self.regions:
            return "You specified an invalid region for Droplet creation."
        if body.get("size") not in self.sizes:
            return "You specified an invalid size for Droplet creation."
        image = body.get("image")
        if not isinstance(image, int) and image not in self.images:
            return "You specified an invalid image for Droplet creation."
        known = {str(k["id"]) for k in self.ssh_keys} | {k["fingerprint"] for k in self.ssh_keys}
        bad = [str(key) for key in body.get("ssh_keys") or () if str(key) not in known]
        if bad:
            return f"{', '.join(bad)} are invalid key identifiers for Droplet creation."
        if len(self._droplets) >= self.droplet_limit:
            return DROPLET_LIMIT
        return None

    def _new_droplet(self, body: Mapping[str, Any]) -> _Droplet:
        droplet_id, self._next_id = self._next_id, self._next_id + 1
        image = body["image"]
        data: dict[str, Any] = {
            "id": droplet_id,
            "name": body["name"],
            "status": "new",
            "locked": False,
            "tags": list(dict.fromkeys(body.get("tags") or ())),
            "networks": {"v4": [], "v6": []},
            "region": {"slug": body.get("region") or self.regions[0]},
            "size_slug": body["size"],
            "image": {"id": image} if isinstance(image, int) else {"slug": image},
            "vpc_uuid": body.get("vpc_uuid"),
            "created_at": _iso(self._clock()),
        }
        self._droplets[droplet_id] = droplet = _Droplet(data, self.active_after)
        return droplet

    def _seen(self, droplet: _Droplet) -> dict[str, Any]:
        """The droplet as one GET shows it: new ones turn active after ``active_after`` GETs."""
        if droplet.data["status"] == "new":
            if droplet.gets_left <= 0:
                self._activate(droplet, "active")
            droplet.gets_left -= 1
        return _copy(droplet.data)

    def _activate(self, droplet: _Droplet, status: str) -> None:
        number = droplet.data["id"] % 250 + 2
        droplet.data["status"] = status
        droplet.data["networks"]["v4"] = [
            {
                "ip_address": f"10.110.0.{number}",
                "netmask": "255.255.240.0",
                "gateway": "10.110.0.1",
                "type": "private",
            },
            {
                "ip_address": self._public_address(droplet.data),
                "netmask": "255.255.240.0",
                "gateway": "203.0.113.1",
                "type": "public",
            },
        ]

    def _public_address(self, data: Mapping[str, Any]) -> str:
        self._handed_out += 1
        if callable(self._addresses):
            return self._addresses(_copy(data))
        if self._addresses is not None:
            return self._addresses[(self._handed_out - 1) % len(self._addresses)]
        return f"203.0.113.{(self._handed_out - 1) % 250 + 2}"

    # -- Links & Pagination --------------------------------------------------------------------

    def _page(self, items: list[Any], key: str, path: str, query: dict[str, str]) -> dict[str, Any]:
        per_page = min(max(_int(query.get("per_page"), 20), 1), 200)
        last = max(math.ceil(len(items) / per_page), 1)
        page = min(max(_int(query.get("page"), 1), 1), last)
        pages: dict[str, str] = {}
        if page > 1:
            pages |= {
                "first": self._link(path, query, 1),
                "prev": self._link(path, query, page - 1),
            }
        if page < last:
            pages |= {
                "last": self._link(path, query, last),
                "next": self._link(path, query, page + 1),
            }
        return {
            key: items[(page - 1) * per_page : page * per_page],
            "links": {"pages": pages} if pages else {},
            "meta": {"total": len(items)},
        }

    def _link(self, path: str, query: dict[str, str], page: int) -> str:
        return f"{self.url}{path}?{urlencode({**query, 'page': str(page)})}"


def _handler(standin: DigitalOceanStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "digitalocean-standin"

        def do_GET(self) -> None:
            standin._handle(self)

        def do_POST(self) -> None:
            standin._handle(self)

        def do_DELETE(self) -> None:
            standin._handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the stand-in keeps its own request log."""

    return Handler


def _read_json(request: BaseHTTPRequestHandler) -> Any:
    length = int(request.headers.get("Content-Length") or 0)
    if not length:
        return None
    try:
        return json.loads(request.rfile.read(length))
    except ValueError:
        return "<not json>"


def _respond(
    request: BaseHTTPRequestHandler, status: int, payload: Any, headers: Mapping[str, str]
) -> None:
    data = b"" if payload is None else json.dumps(payload).encode()
    request.send_response(status)
    for name, value in headers.items():
        request.send_header(name, value)
    if status != 204:
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


def _rid() -> str:
    """A ``request_id``, as the API adds to some error bodies (the reference's 422 example)."""
    return str(uuid.uuid4())


def _copy(data: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(data))
    return copied


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
