"""A faithful stand-in for the ``tailscale`` CLI on sandbox hosts (no Tailscale binary here).

It is **not** Tailscale: it stands in for the real ``tailscale`` command so that
``hosts bootstrap``, cross-host wiring and ``doctor`` can be tested on the
sandbox hosts (:mod:`stagecraft.localhosts.sandbox`) without a tailnet. It
implements the subcommands Stagecraft uses, with the real flags, output shapes
and exit codes (``cmd/tailscale/cli/*.go`` and ``ipn/ipnstate/ipnstate.go`` of
github.com/tailscale/tailscale):

- ``version``: the real multi-line output (``1.62.0`` then ``tailscale commit:``...).
- ``up [--reset] [--auth-key=KEY|file:PATH] [--hostname=H] [--advertise-tags=T,..]
  [--accept-routes] [--force-reauth]``: a logged-out node needs a key; an
  unknown key fails with ``backend error: invalid key: unable to validate API
  key``, a spent one-off key with ``backend error: invalid key: API key <id> not
  valid``, a tag the key may not use with ``requested tags [...] are invalid or
  not permitted`` (all exit 1, as tailscaled reports them). A logged-in node
  ignores the key (nothing is spent), as the real ``up`` does without
  ``--force-reauth``; without ``--reset`` a changed setting is refused with the
  real "requires mentioning all non-default flags" error.
- ``status [--json]``: ``--json`` prints an ``ipnstate.Status`` document
  (``Version``, ``BackendState``, ``TailscaleIPs``, ``Self``, ``Peer`` keyed by
  node key, ``MagicDNSSuffix``, ``CurrentTailnet``, ``User``) and exits 0 in every
  state; the plain form prints the real table, or ``Tailscale is stopped.`` /
  ``Logged out.`` with exit 1.
- ``ip [-1] [-4] [-6] [peer]``: addresses of the node or of a peer; ``no current
  Tailscale IPs; state: NeedsLogin`` when it has none.
- ``ping [-c N] [--timeout D] <hostname-or-IP>``: a real reachability check
  over the mesh (a TCP connection attempt to the peer's mesh IP, port 22: an
  answer, even a refusal, is a pong), printing ``pong from NAME (IP) via
  ENDPOINT in Nms`` (exit 0) or ``ping "IP" timed out`` per try then ``no
  reply`` (exit 1), as ``tailscale ping`` does; ``IP is local Tailscale IP`` for
  itself.
- ``down`` (the node stops; peers see it offline) and ``logout`` (it leaves the tailnet).

The "coordination server" is a control directory on the shared filesystem
(:class:`Tailnet`): the valid auth keys (``keys.json``), one JSON file per node
(``nodes/``) and ``commands.log`` (one JSON line per command: the host's
address and its argv, auth key values replaced by ``***``), so a test can assert
e.g. that a second bootstrap ran no ``up``. A node is the network namespace the
command runs in (sandbox hosts are namespaces). Its addresses are stable
(100.64.0.0/10 and Tailscale's fd7a:115c:a1e0::/48, derived from its hostname).

Networking is real: ``up`` creates ``tailscale0`` in the host's namespace (a
VXLAN device over its default-route interface, so mesh traffic really arrives
on ``tailscale0`` as with the real TUN device), puts the node's IPv4 on it as a
/32 and routes 100.64.0.0/10 through it, like tailscaled; ``down`` and
``logout`` remove the device. Only IPv4 carries traffic.

Example (what the e2e tests do)::

    with Tailnet(tmp_path / "tailnet") as tailnet:   # installs /usr/local/bin/tailscale
        key = tailnet.add_key(reusable=True)
        ...  # `stagecraft hosts bootstrap` on sandbox hosts with TS_AUTHKEY=key
        assert [c for c in tailnet.commands() if c["argv"][:1] == ["up"]]

This module uses the standard library only: the installed script runs it
with the system ``python3`` on the hosts.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

VERSION = "1.62.0"
LONG_VERSION = f"{VERSION}-tstandin"
INSTALL_PATH = Path("/usr/local/bin/tailscale")
MARK = "# stagecraft tailscale stand-in"
MESH_V4 = ipaddress.ip_network("100.64.0.0/10")
MESH_V6 = ipaddress.ip_network("fd7a:115c:a1e0::/48")
DEFAULT_SUFFIX = "tail5c4f1e.ts.net"
VXLAN_PORT = 4789
PEER_PORT = 41641  # tailscaled's default UDP port, shown as the direct endpoint
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# -- the test side: a tailnet (control directory) and the installed command ---------


class Tailnet:
    """A stand-in tailnet: its control directory, valid keys, and the installed ``tailscale``.

    Use as a context manager: entering installs the command at ``/usr/local/bin/tailscale``
    (refusing to replace a file that is not a stand-in), leaving removes it.
    """

    def __init__(
        self,
        control: Path,
        *,
        suffix: str = DEFAULT_SUFFIX,
        install_path: Path = INSTALL_PATH,
        python: str = "/usr/bin/python3",
    ) -> None:
        self.control = control
        self.suffix = suffix
        self.install_path = install_path
        self.python = python

    def __enter__(self) -> Tailnet:
        self.install()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.uninstall()

    def install(self) -> None:
        """Create the control directory and install the command (a copy of this module)."""
        (self.control / "nodes").mkdir(parents=True, exist_ok=True)
        settings = {"suffix": self.suffix, "vni": self.vni, "group": self.group}
        (self.control / "tailnet.json").write_text(json.dumps(settings))
        if not (self.control / "keys.json").exists():
            (self.control / "keys.json").write_text("{}")
        shutil.copyfile(__file__, self.control / "standin.py")
        if self.install_path.exists() and MARK not in self.install_path.read_text(errors="ignore"):
            raise RuntimeError(f"{self.install_path} exists and is not the stand-in: not replacing")
        script = (
            f"#!{self.python}\n{MARK} (not Tailscale): see stagecraft.testing.tailscale_standin\n"
            "import runpy, sys\n"
            f"cli = runpy.run_path({str(self.control / 'standin.py')!r})['cli']\n"
            f"sys.exit(cli(sys.argv[1:], {str(self.control)!r}))\n"
        )
        temp = self.install_path.with_name(f".{self.install_path.name}.standin")
        temp.write_text(script)
        temp.chmod(0o755)
        temp.replace(self.install_path)

    def uninstall(self) -> None:
        """Remove the installed command (only if it is the stand-in)."""
        try:
            text = self.install_path.read_text(errors="ignore")
        except FileNotFoundError:
            return
        if MARK in text:
            self.install_path.unlink()

    @property
    def vni(self) -> int:
        """The VXLAN id of this tailnet's mesh (derived from its control directory)."""
        return 1 + int(hashlib.sha256(str(self.control).encode()).hexdigest()[:6], 16) % 16000000

    @property
    def group(self) -> str:
        """The multicast group the nodes' ``tailscale0`` devices meet on."""
        return f"239.77.{self.vni % 250}.{(self.vni // 250) % 250 + 1}"

    def add_key(
        self, *, reusable: bool = True, tags: list[str] | None = None, key: str | None = None
    ) -> str:
        """A new valid auth key ``tskey-auth-<id>-<secret>``; ``tags``: the only ones it allows."""
        key = key or f"tskey-auth-k{secrets.token_hex(5)}CNTRL-{secrets.token_hex(16)}"
        with _locked(self.control):
            keys = _read_json(self.control / "keys.json", {})
            keys[key] = {"reusable": reusable, "tags": tags, "used": False}
            _write_json(self.control / "keys.json", keys)
        return key

    def commands(self) -> list[dict[str, Any]]:
        """Every command run so far: ``{"host": <address>, "argv": [...], "exit": N}``."""
        path = self.control / "commands.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def nodes(self) -> list[dict[str, Any]]:
        """Every node the tailnet knows (its JSON record)."""
        return [json.loads(p.read_text()) for p in sorted((self.control / "nodes").glob("*.json"))]


@contextmanager
def _locked(control: Path) -> Iterator[None]:
    with open(control / "lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def _write_json(path: Path, data: Any) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    temp.write_text(json.dumps(data, indent=2, sort_keys=True))
    temp.replace(path)


# -- the host side: the command -------------------------------------------------------


class Exit(Exception):
    """End the command with ``code`` after printing ``message`` to stderr (like the Go CLI)."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


FLAGS: dict[str, tuple[set[str], set[str]]] = {
    # subcommand: (boolean flags, flags with a value), as the real FlagSets define them
    "up": (
        {"reset", "accept-routes", "force-reauth", "ssh", "shields-up", "accept-dns", "qr", "json"},
        {"auth-key", "authkey", "hostname", "advertise-tags", "login-server", "timeout"},
    ),
    "status": ({"json", "active", "self", "peers", "web", "browser"}, {"listen"}),
    "ip": ({"1", "4", "6"}, set()),
    "ping": ({"verbose", "until-direct", "tsmp", "icmp", "peerapi"}, {"c", "timeout"}),
    "down": (set(), {"accept-risk"}),
    "logout": (set(), set()),
    "version": ({"daemon", "upstream", "json"}, set()),
}
_KEY_FLAGS = ("auth-key", "authkey")


def cli(argv: list[str], control_dir: str) -> int:
    """Run ``tailscale ARGV`` against the tailnet in ``control_dir``; the exit code."""
    control = Path(control_dir)
    os.environ["PATH"] = os.environ.get("PATH", "") + ":" + _SYSTEM_PATH
    code = 0
    try:
        code = _dispatch(argv, control)
    except Exit as stop:
        if stop.message:
            sys.stderr.write(stop.message.rstrip("\n") + "\n")
        code = stop.code
    finally:
        _log(control, argv, code)
    return code


def _dispatch(argv: list[str], control: Path) -> int:
    if not argv:
        raise Exit(
            1, "tailscale: missing subcommand (stand-in implements: " + ", ".join(FLAGS) + ")"
        )
    if argv[0] in ("--version", "-version"):
        argv = ["version"]
    command, rest = argv[0], argv[1:]
    if command not in FLAGS:
        raise Exit(1, f"tailscale: unknown subcommand {command!r} (not in the stand-in)")
    flags, args = _parse(command, rest)
    node = Node(control)
    handler = {
        "version": node.version,
        "up": node.up,
        "status": node.status,
        "ip": node.ip,
        "ping": node.ping,
        "down": node.down,
        "logout": node.logout,
    }[command]
    return handler(flags, args)


def _parse(command: str, argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Go ``flag`` package parsing: ``-f``, ``--f``, ``-f=v``, ``-f v``; stops at the first arg."""
    booleans, valued = FLAGS[command]
    flags: dict[str, str] = {}
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            index += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, has_value, value = arg.lstrip("-").partition("=")
        if name in booleans:
            flags[name] = value if has_value else "true"
        elif name in valued:
            if not has_value:
                index += 1
                if index >= len(argv):
                    raise Exit(2, f"flag needs an argument: -{name}")
                value = argv[index]
            flags[name] = value
        else:
            raise Exit(2, f"flag provided but not defined: -{name}")
        index += 1
    return flags, argv[index:]


def _true(flags: dict[str, str], name: str, default: bool = False) -> bool:
    value = flags.get(name)
    return default if value is None else value.lower() in ("1", "t", "true")


def _log(control: Path, argv: list[str], code: int) -> None:
    shown: list[str] = []
    hide_next = False
    for arg in argv:
        name, has_value, value = arg.lstrip("-").partition("=")
        if hide_next:
            shown.append("***" if not arg.startswith("file:") else arg)
            hide_next = False
        elif arg.startswith("-") and name in _KEY_FLAGS and has_value:
            shown.append(arg if value.startswith("file:") else f"{arg.split('=')[0]}=***")
        else:
            hide_next = arg.startswith("-") and name in _KEY_FLAGS and not has_value
            shown.append(arg)
    entry = {"time": time.time(), "host": _underlay_address(), "argv": shown, "exit": code}
    try:
        with _locked(control), open(control / "commands.log", "a") as log:
            log.write(json.dumps(entry) + "\n")
    except OSError:
        pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise Exit(1, f"stand-in: `ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def _underlay() -> tuple[str, str]:
    """The interface of the default route and its IPv4 address (the node's endpoint)."""
    route = _ip("-4", "-o", "route", "show", "default", check=False).stdout.split()
    device = route[route.index("dev") + 1] if "dev" in route else "eth0"
    addresses = _ip("-4", "-o", "addr", "show", "dev", device, check=False).stdout.split()
    address = addresses[addresses.index("inet") + 1].split("/")[0] if "inet" in addresses else ""
    return device, address


def _underlay_address() -> str:
    try:
        return _underlay()[1]
    except (OSError, Exit):
        return ""


class Node:
    """This machine (its network namespace) as a node of the stand-in tailnet."""

    def __init__(self, control: Path) -> None:
        self.control = control
        self.settings = _read_json(control / "tailnet.json", {})
        self.suffix = str(self.settings.get("suffix", DEFAULT_SUFFIX))
        self.machine = str(os.stat("/proc/self/ns/net").st_ino)
        self.path = control / "nodes" / f"{self.machine}.json"

    # state

    def record(self) -> dict[str, Any] | None:
        return _read_json(self.path, None)  # type: ignore[no-any-return]

    def others(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted((self.control / "nodes").glob("*.json")):
            if path != self.path:
                found.append(json.loads(path.read_text()))
        return found

    def save(self, record: dict[str, Any]) -> None:
        _write_json(self.path, record)

    # subcommands

    def version(self, flags: dict[str, str], args: list[str]) -> int:
        if _true(flags, "json"):
            print(json.dumps({"majorMinorPatch": VERSION, "short": VERSION, "long": LONG_VERSION}))
            return 0
        print(
            f"{VERSION}\n  tailscale commit: 0000000000000000000000000000000000000000 (stand-in)\n"
            "  other commit: 0000000000000000000000000000000000000000\n"
            "  go version: none (Stagecraft's test stand-in)"
        )
        return 0

    def up(self, flags: dict[str, str], args: list[str]) -> int:
        if args:
            raise Exit(1, f"too many non-flag arguments: {args!r}")
        key = flags.get("auth-key") or flags.get("authkey") or ""
        if key.startswith("file:"):
            try:
                key = Path(key[len("file:") :]).read_text().strip()
            except OSError as exc:
                raise Exit(1, f"reading auth key from file: {exc}") from None
        wanted_name = flags.get("hostname") or socket.gethostname()
        tags = sorted({t for t in flags.get("advertise-tags", "").split(",") if t})
        for tag in tags:
            if not re.fullmatch(r"tag:[A-Za-z][A-Za-z0-9-]*", tag):
                raise Exit(1, f'tailscale up: tag: "{tag}": tags must start with "tag:"')
        accept_routes = _true(flags, "accept-routes")
        with _locked(self.control):
            record = self.record()
            logged_in = record is not None and record.get("state") != "NeedsLogin"
            if logged_in and record is not None and not _true(flags, "force-reauth"):
                if not _true(flags, "reset"):
                    self._refuse_changed(record, flags, wanted_name, tags, accept_routes)
            else:
                self._authenticate(key, tags)
                record = None
            record = self._register(record, wanted_name, tags, accept_routes)
            self._bring_up(record)
            record["state"] = "Running"
            self.save(record)
        return 0

    def _refuse_changed(
        self,
        record: dict[str, Any],
        flags: dict[str, str],
        name: str,
        tags: list[str],
        accept_routes: bool,
    ) -> None:
        """The real ``up`` without ``--reset`` refuses to drop a non-default setting silently."""
        current = []
        if record["hostname"] != socket.gethostname():
            current.append(f"--hostname={record['hostname']}")
        if record["tags"]:
            current.append(f"--advertise-tags={','.join(record['tags'])}")
        if record.get("accept_routes"):
            current.append("--accept-routes")
        missing = (
            ("hostname" not in flags and record["hostname"] != socket.gethostname())
            or ("advertise-tags" not in flags and record["tags"])
            or ("accept-routes" not in flags and record.get("accept_routes"))
        )
        if missing:
            raise Exit(
                1,
                "Error: changing settings via 'tailscale up' requires mentioning all\n"
                "non-default flags. To proceed, either re-run your command with --reset or\n"
                "use the command below to explicitly mention the current value of\n"
                "all non-default settings:\n\n"
                f"\ttailscale up {' '.join(current)}\n",
            )

    def _authenticate(self, key: str, tags: list[str]) -> None:
        """Check ``key`` against the tailnet's keys as the control server would; spend a one-off."""
        if not key:
            raise Exit(
                1,
                "\nTo authenticate, visit:\n\n\thttps://login.tailscale.com/a/standin\n\n"
                "(stand-in: no interactive login; pass --auth-key)",
            )
        keys = _read_json(self.control / "keys.json", {})
        found = keys.get(key)
        if found is None:
            raise Exit(1, "backend error: invalid key: unable to validate API key")
        if found["used"] and not found["reusable"]:
            key_id = key.split("-")[2] if key.count("-") >= 3 else "?"
            raise Exit(1, f"backend error: invalid key: API key {key_id} not valid")
        allowed = found.get("tags")
        if allowed is not None:
            bad = [t for t in tags if t not in allowed]
            if bad:
                raise Exit(
                    1,
                    f"backend error: requested tags [{', '.join(bad)}] are invalid or not "
                    "permitted",
                )
        found["used"] = True
        _write_json(self.control / "keys.json", keys)

    def _register(
        self, record: dict[str, Any] | None, name: str, tags: list[str], accept_routes: bool
    ) -> dict[str, Any]:
        others = self.others()
        if record is None:
            taken = {o["ipv4"] for o in others}
            digest = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
            size = MESH_V4.num_addresses
            offset = digest % size
            while True:
                candidate = MESH_V4.network_address + offset
                if candidate.packed[-1] not in (0, 255) and str(candidate) not in taken:
                    break
                offset = (offset + 1) % size
            record = {
                "machine": self.machine,
                "id": f"n{secrets.token_hex(5)}CNTRL",
                "node_key": f"nodekey:{secrets.token_hex(32)}",
                "ipv4": str(candidate),
                "ipv6": str(
                    MESH_V6.network_address + int(candidate) - int(MESH_V4.network_address)
                ),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "user_id": 1,
            }
        record["hostname"] = name
        record["tags"] = tags
        record["accept_routes"] = accept_routes
        record["endpoint"] = f"{_underlay()[1]}:{PEER_PORT}"
        clash = any(o["hostname"] == name and o.get("state") != "NeedsLogin" for o in others)
        record["dns_label"] = f"{name}-1" if clash else name  # MagicDNS dedups names
        return record

    def _bring_up(self, record: dict[str, Any]) -> None:
        """``tailscale0`` with the node's /32 and the 100.64.0.0/10 route, as tailscaled sets up."""
        device, _ = _underlay()
        if _ip("link", "show", "tailscale0", check=False).returncode != 0:
            _ip(
                "link", "add", "tailscale0", "type", "vxlan", "id", str(self.settings["vni"]),
                "group", str(self.settings["group"]), "dev", device, "dstport", str(VXLAN_PORT),
            )  # fmt: skip
        _ip("addr", "flush", "dev", "tailscale0")
        _ip("addr", "add", f"{record['ipv4']}/32", "dev", "tailscale0")
        _ip("link", "set", "tailscale0", "up")
        _ip("route", "replace", str(MESH_V4), "dev", "tailscale0", "src", record["ipv4"])

    def down(self, flags: dict[str, str], args: list[str]) -> int:
        with _locked(self.control):
            record = self.record()
            _ip("link", "del", "tailscale0", check=False)
            if record is not None and record.get("state") == "Running":
                record["state"] = "Stopped"
                self.save(record)
        return 0

    def logout(self, flags: dict[str, str], args: list[str]) -> int:
        with _locked(self.control):
            _ip("link", "del", "tailscale0", check=False)
            self.path.unlink(missing_ok=True)
        return 0

    # reading

    def document(self, *, peers: bool = True) -> dict[str, Any]:
        """The ``ipnstate.Status`` document of this node (``tailscale status --json``)."""
        record = self.record()
        state = record["state"] if record is not None else "NeedsLogin"
        logged_in = record is not None and state != "NeedsLogin"
        user = {"ID": 1, "LoginName": "tagged-devices", "DisplayName": "tagged devices",
                "ProfilePicURL": "", "Roles": []}  # fmt: skip
        listed: dict[str, Any] | None = None
        if logged_in and state == "Running" and peers:
            listed = {
                other["node_key"]: self.peer_status(other)
                for other in self.others()
                if other.get("state") != "NeedsLogin"
            }
        return {
            "Version": LONG_VERSION,
            "TUN": True,
            "BackendState": state,
            "HaveNodeKey": record is not None,
            "AuthURL": "",
            "TailscaleIPs": [record["ipv4"], record["ipv6"]] if logged_in and record else None,
            "Self": self.peer_status(record, itself=True)
            if logged_in and record
            else self.logged_out_self(),
            "Health": ["Tailscale is stopped."] if state == "Stopped" else [],
            "MagicDNSSuffix": self.suffix if logged_in else "",
            "CurrentTailnet": {
                "Name": "stagecraft-standin@example.com",
                "MagicDNSSuffix": self.suffix,
                "MagicDNSEnabled": True,
            }
            if logged_in
            else None,
            "CertDomains": None,
            "Peer": listed,
            "User": {"1": user} if logged_in else None,
            "ClientVersion": None,
        }

    def peer_status(self, node: dict[str, Any], *, itself: bool = False) -> dict[str, Any]:
        """One ``ipnstate.PeerStatus``."""
        online = node.get("state") == "Running"
        status: dict[str, Any] = {
            "ID": node["id"],
            "PublicKey": node["node_key"],
            "HostName": node["hostname"],
            "DNSName": f"{node['dns_label']}.{self.suffix}.",
            "OS": "linux",
            "UserID": node["user_id"],
            "TailscaleIPs": [node["ipv4"], node["ipv6"]],
            "AllowedIPs": [f"{node['ipv4']}/32", f"{node['ipv6']}/128"],
            "Addrs": [node["endpoint"]],
            "CurAddr": "" if itself or not online else node["endpoint"],
            "Relay": "fra",
            "RxBytes": 0,
            "TxBytes": 0,
            "Created": node["created"],
            "LastWrite": "0001-01-01T00:00:00Z",
            "LastSeen": "0001-01-01T00:00:00Z",
            "LastHandshake": "0001-01-01T00:00:00Z",
            "Online": online,
            "ExitNode": False,
            "ExitNodeOption": False,
            "Active": False,
            "PeerAPIURL": [f"http://{node['ipv4']}:{PEER_PORT + 1}"],
            "InNetworkMap": True,
            "InMagicSock": not itself,
            "InEngine": not itself,
        }
        if node["tags"]:
            status["Tags"] = list(node["tags"])
        return status

    def logged_out_self(self) -> dict[str, Any]:
        return {
            "ID": "",
            "PublicKey": "nodekey:" + "0" * 64,
            "HostName": socket.gethostname(),
            "DNSName": "",
            "OS": "linux",
            "UserID": 0,
            "TailscaleIPs": None,
            "Online": False,
            "InNetworkMap": False,
        }

    def status(self, flags: dict[str, str], args: list[str]) -> int:
        if args:
            raise Exit(1, "unexpected non-flag arguments to 'tailscale status'")
        doc = self.document(peers=_true(flags, "peers", True))
        if _true(flags, "json"):
            sys.stdout.write(json.dumps(doc, indent=2))
            return 0
        state = doc["BackendState"]
        if state == "Stopped":
            print("Tailscale is stopped.")
            return 1
        if state == "NeedsLogin":
            print("Logged out.")
            return 1
        rows = [doc["Self"], *sorted((doc["Peer"] or {}).values(), key=lambda p: p["HostName"])]
        for peer in rows:
            name = peer["DNSName"].removesuffix(f"{self.suffix}.").rstrip(".")
            owner = "tagged-devices" if peer.get("Tags") else "-"
            activity = "-" if peer["Online"] else "offline"
            print(
                f"{peer['TailscaleIPs'][0]:<15} {name:<20} {owner:<12} {peer['OS']:<7} {activity}"
            )
        return 0

    def ip(self, flags: dict[str, str], args: list[str]) -> int:
        if len(args) > 1:
            raise Exit(1, "too many arguments, expected at most one peer")
        want1, want4, want6 = (_true(flags, f) for f in ("1", "4", "6"))
        if sum((want1, want4, want6)) > 1:
            raise Exit(1, "tailscale ip -1, -4, and -6 are mutually exclusive")
        v4, v6 = (True, True) if not (want4 or want6) else (want4, want6)
        doc = self.document()
        ips = list(doc["TailscaleIPs"] or [])
        if args:
            address = self.resolve(doc, args[0])[0]
            peer = self.peer_with_ip(doc, address)
            if peer is None:
                raise Exit(1, f"no peer found with IP {address}")
            ips = list(peer["TailscaleIPs"])
        if not ips:
            raise Exit(1, f"no current Tailscale IPs; state: {doc['BackendState']}")
        if want1:
            ips = ips[:1]
        shown = [a for a in ips if (ipaddress.ip_address(a).version == 4 and v4)
                 or (ipaddress.ip_address(a).version == 6 and v6)]  # fmt: skip
        for address in shown:
            print(address)
        if not shown and want4:
            raise Exit(1, "no Tailscale IPv4 address")
        if not shown and want6:
            raise Exit(1, "no Tailscale IPv6 address")
        return 0

    def resolve(self, doc: dict[str, Any], target: str) -> tuple[str, bool]:
        """``tailscaleIPFromArg``: an IP as is, else a peer's (or its own) name; (ip, is_self)."""
        try:
            ipaddress.ip_address(target)
            return target, False
        except ValueError:
            pass

        def matches(peer: dict[str, Any]) -> bool:
            dns = str(peer["DNSName"])
            base = dns.removesuffix(f"{doc['MagicDNSSuffix']}.").rstrip(".")
            return target.lower() == base.lower() or target == dns

        for peer in (doc["Peer"] or {}).values():
            if matches(peer):
                return peer["TailscaleIPs"][0], False
        me = doc["Self"]
        if me.get("DNSName") and matches(me) and me.get("TailscaleIPs"):
            return me["TailscaleIPs"][0], True
        try:
            return socket.gethostbyname(target), False
        except OSError as exc:
            raise Exit(1, f'error looking up IP of "{target}": {exc}') from None

    def peer_with_ip(self, doc: dict[str, Any], address: str) -> dict[str, Any] | None:
        for peer in [*(doc["Peer"] or {}).values(), doc["Self"]]:
            if address in (peer.get("TailscaleIPs") or []):
                return peer  # type: ignore[no-any-return]
        return None

    def ping(self, flags: dict[str, str], args: list[str]) -> int:
        doc = self.document()
        state = doc["BackendState"]
        if state not in ("Running", "Starting"):
            print("Tailscale is stopped." if state == "Stopped" else "Logged out.")
            return 1
        if len(args) != 1 or not args[0]:
            raise Exit(1, "usage: ping <hostname-or-IP>")
        address, itself = self.resolve(doc, args[0])
        if itself or address in (doc["TailscaleIPs"] or []):
            print(f"{address} is local Tailscale IP")
            return 0
        count = int(flags.get("c", "10"))
        timeout = _duration(flags.get("timeout", "5s"))
        peer = self.peer_with_ip(doc, address)
        if peer is None:
            raise Exit(1, "no matching peer")
        for attempt in range(1, count + 1):
            started = time.monotonic()
            if _answers(address, timeout):
                latency = max(1, round((time.monotonic() - started) * 1000))
                via = peer["Addrs"][0] if peer["Addrs"] else "DERP(fra)"
                print(f"pong from {peer['HostName']} ({address}) via {via} in {latency}ms")
                return 0
            print(f'ping "{address}" timed out')
            if attempt < count:
                time.sleep(max(0.0, timeout - (time.monotonic() - started)))
        raise Exit(1, "no reply")


def _answers(address: str, timeout: float) -> bool:
    """Whether ``address`` answers a TCP connection attempt to port 22 (a refusal is an answer)."""
    try:
        with socket.create_connection((address, 22), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def _duration(text: str) -> float:
    """A Go duration (``5s``, ``500ms``, ``1m30s``) in seconds."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise Exit(2, f'invalid value "{text}" for flag -timeout: parse error')
    return sum(float(number) * units[unit] for number, unit in parts)


if __name__ == "__main__":  # pragma: no cover - the installed script calls cli()
    sys.exit(cli(sys.argv[2:], sys.argv[1]))
