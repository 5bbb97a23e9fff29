"""The release ledger: append-only JSON Lines on every host, merged by release id.

Each host of an environment keeps ``/var/lib/stagecraft/apps/<project>/<env>/
ledger.jsonl`` (ADR 0005): one :class:`LedgerRecord` per line, never
rewritten. :func:`append` adds one line in a single ``write`` (so concurrent
appends never interleave) after mending a line cut off by a crash;
:func:`read` skips lines it cannot parse, with a warning. :func:`history`
reads every host in parallel and merges their records into :class:`Release`
values, newest first; an unreachable host is reported in the result, not fatal.

Example::

    record = LedgerRecord(release=rid, version="3f2a9c1d0e4b", env="staging", host="web-1",
                          started_at=t0, finished_at=t1, by="alice@laptop", command="deploy",
                          outcome="success", services={"api": ServiceRecord("shop/api:3f2a9c1d0e4b",
                          "sha256:...", "9b1c...", "success")})
    append(web1, "shop", record, secrets=resolved.values())   # refuses secret values
    found = history(hosts, "shop", "staging")
    found.releases[0].outcome, found.unreachable               # "success", {"data-1": "..."}
    previous_successful(found.releases)                        # rollback target
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from stagecraft import log
from stagecraft.deploy.state.layout import ledger_path
from stagecraft.errors import StagecraftError
from stagecraft.providers.secrets import SecretValue
from stagecraft.redact import MIN_SECRET_LENGTH, Redactor
from stagecraft.runtime.fanout import describe, fan_out
from stagecraft.runtime.ssh import SSHHost

logger = logging.getLogger(__name__)


class SecretInRecord(StagecraftError):
    """A ledger record would contain the value of a declared secret: refused."""


class LedgerError(StagecraftError):
    """A ledger record is malformed (a programming error in the caller, or a bad line)."""


@dataclass(frozen=True)
class ServiceRecord:
    """What one release did to one service on one host."""

    image: str
    image_id: str | None
    config_hash: str | None
    outcome: str
    error: str | None = None


@dataclass(frozen=True)
class LedgerRecord:
    """One line of a host's ledger (ADR 0005 section 4)."""

    release: str
    version: str
    env: str
    host: str
    started_at: str
    finished_at: str
    by: str
    command: str
    outcome: str
    services: dict[str, ServiceRecord] = field(default_factory=dict)
    peers: dict[str, str] = field(default_factory=dict)
    """Every host's outcome in this release when the record was written (host -> outcome),
    so a host that could not be reached, and so wrote no record, still counts."""

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, when both timestamps parse."""
        try:
            start = datetime.fromisoformat(self.started_at)
            end = datetime.fromisoformat(self.finished_at)
        except ValueError:
            return None
        return (end - start).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_line(self) -> str:
        """The record as one line of JSON (no newline)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: object) -> LedgerRecord:
        """Parse one decoded line; raises :class:`LedgerError` when it is not a record."""
        if not isinstance(data, dict):
            raise LedgerError("a ledger line is not a JSON object")
        try:
            services = {
                str(name): ServiceRecord(
                    image=str(svc["image"]),
                    image_id=_opt(svc.get("image_id")),
                    config_hash=_opt(svc.get("config_hash")),
                    outcome=str(svc.get("outcome", "unknown")),
                    error=_opt(svc.get("error")),
                )
                for name, svc in dict(data.get("services") or {}).items()
            }
            return cls(
                release=str(data["release"]),
                version=str(data["version"]),
                env=str(data["env"]),
                host=str(data["host"]),
                started_at=str(data["started_at"]),
                finished_at=str(data["finished_at"]),
                by=str(data["by"]),
                command=str(data["command"]),
                outcome=str(data["outcome"]),
                services=services,
                peers={str(k): str(v) for k, v in dict(data.get("peers") or {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LedgerError(f"a ledger line lacks a field or has a bad one: {exc}") from None


@dataclass(frozen=True)
class Release:
    """One release id merged across hosts: every host's record and the overall outcome."""

    id: str
    version: str
    command: str
    by: str
    started_at: str
    finished_at: str
    hosts: dict[str, LedgerRecord]

    @property
    def unrecorded(self) -> dict[str, str]:
        """Hosts of the release with no record of their own, and their outcome per the others."""
        found: dict[str, str] = {}
        for record in self.hosts.values():
            for host, outcome in record.peers.items():
                if host not in self.hosts:
                    found[host] = outcome
        return dict(sorted(found.items()))

    @property
    def outcome(self) -> str:
        """``success`` only when every host of the release succeeded (recorded or not)."""
        outcomes = {record.outcome for record in self.hosts.values()}
        outcomes |= set(self.unrecorded.values())
        if outcomes == {"success"}:
            return "success"
        if "failed" in outcomes:
            return "failed"
        if "interrupted" in outcomes:
            return "interrupted"
        return "failed"

    @property
    def images(self) -> set[str]:
        """Every image tag the release ran, on any host."""
        return {
            svc.image
            for record in self.hosts.values()
            for svc in record.services.values()
            if svc.image
        }

    @property
    def deployed(self) -> bool:
        """A deploy or rollback (a ``remove`` record takes services away: nothing to return to)."""
        return self.command != "remove"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "command": self.command,
            "by": self.by,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "outcome": self.outcome,
            "hosts": {name: record.to_dict() for name, record in self.hosts.items()},
            "unrecorded": self.unrecorded,
        }


@dataclass(frozen=True)
class History:
    """Releases of an environment, newest first, and the hosts that could not be read."""

    releases: list[Release]
    unreachable: dict[str, str]

    def find(self, release_id: str) -> Release | None:
        """The release with this id (or the only one whose id starts with it)."""
        exact = [r for r in self.releases if r.id == release_id]
        if exact:
            return exact[0]
        prefixed = [r for r in self.releases if r.id.startswith(release_id)]
        return prefixed[0] if len(prefixed) == 1 else None


def check_no_secrets(text: str, secrets: Iterable[SecretValue]) -> None:
    """Raise :class:`SecretInRecord` (naming the secret, never its value) if any value is in it.

    ``text`` is a JSON line, so values are looked for in every form they take
    there (``\\"``, ``\\\\``, ``\\t``, ``\\u00e9``) and in the other encodings
    :class:`stagecraft.redact.Redactor` knows.
    """
    name = Redactor(secrets, min_length=MIN_SECRET_LENGTH).find(text)
    if name is not None:
        raise SecretInRecord(
            f"refusing to write a ledger record that contains the value of {name}",
            hint="ledger records hold names only; do not copy secret values into "
            "errors, images or labels",
        )


def append(
    host: SSHHost, project: str, record: LedgerRecord, *, secrets: Collection[SecretValue] = ()
) -> None:
    """Append ``record`` to ``host``'s ledger of ``record.env`` as one line, in one write.

    A previous line cut off by a crash is ended first, so it stays one bad
    (skipped) line instead of swallowing this record. Refuses records that contain a
    secret value (:class:`SecretInRecord`).
    """
    line = record.to_line()
    check_no_secrets(line, secrets)
    path = shlex.quote(ledger_path(project, record.env))
    script = (
        f'set -e; f={path}; mkdir -p "$(dirname "$f")"; '
        'if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then printf "\\n" >> "$f"; fi; '
        # dd with fullblock reads the whole line first, then writes it in one O_APPEND write.
        'dd of="$f" oflag=append conv=notrunc bs=4M iflag=fullblock status=none'
    )
    host.run(["sh", "-c", script], input=(line + "\n").encode())
    log.event(
        logger,
        logging.DEBUG,
        f"ledger: {record.release} {record.outcome}",
        host=host.name,
        phase="ledger",
    )


def read(host: SSHHost, project: str, env: str) -> list[LedgerRecord]:
    """Every record of ``host``'s ledger, in file order; bad lines skipped with a warning."""
    data = host.read_file(ledger_path(project, env))
    if data is None:
        return []
    return parse_lines(data.decode(errors="replace"), host=host.name)


def parse_lines(text: str, *, host: str | None = None) -> list[LedgerRecord]:
    """Records of a ledger's text; lines that do not parse are logged and skipped."""
    records: list[LedgerRecord] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(LedgerRecord.from_dict(json.loads(line)))
        except (ValueError, LedgerError) as exc:
            reason = exc.message if isinstance(exc, LedgerError) else "not valid JSON"
            log.event(
                logger,
                logging.WARNING,
                f"ledger line {number} skipped ({reason}; a write cut off by a crash?)",
                host=host,
                phase="ledger",
            )
    return records


def history(hosts: Sequence[SSHHost], project: str, env: str, *, parallel: int = 8) -> History:
    """Read every host's ledger in parallel and merge the records into releases."""
    result = fan_out(
        list(hosts), lambda h: read(h, project, env), name=lambda h: h.name, parallel=parallel
    )
    unreachable = {o.name: describe(o.name, o.error) for o in result.failed}
    for name, reason in unreachable.items():
        log.event(logger, logging.WARNING, f"ledger not read: {reason}", host=name, phase="ledger")
    records = [record for o in result.succeeded for record in (o.value or [])]
    return History(merge(records), unreachable)


def merge(records: Iterable[LedgerRecord]) -> list[Release]:
    """Group records by release id (a host's later record wins), newest release first."""
    by_release: dict[str, dict[str, LedgerRecord]] = {}
    for record in records:
        by_release.setdefault(record.release, {})[record.host] = record
    releases = []
    for release_id, per_host in by_release.items():
        ordered = dict(sorted(per_host.items()))
        first = min(ordered.values(), key=lambda r: r.started_at)
        releases.append(
            Release(
                id=release_id,
                version=first.version,
                command=first.command,
                by=first.by,
                started_at=first.started_at,
                finished_at=max(r.finished_at for r in ordered.values()),
                hosts=ordered,
            )
        )
    return sorted(releases, key=lambda r: r.id, reverse=True)


def previous_successful(releases: Sequence[Release], current: str | None = None) -> Release | None:
    """The rollback target: the newest successful release older than ``current``.

    ``current`` defaults to the newest successful release (what is running).
    ``releases`` are newest first, as :func:`merge` returns them.
    """
    successful = [r for r in releases if r.outcome == "success" and r.deployed]
    if current is None:
        return successful[1] if len(successful) > 1 else None
    older = [r for r in successful if r.id < current]
    return older[0] if older else None


def releases_to_keep(
    releases: Sequence[Release], retain: int, current: str | None = None
) -> list[Release]:
    """The last ``retain`` successful releases plus ``current``: their images must stay."""
    kept = [r for r in releases if r.outcome == "success" and r.deployed][:retain]
    if current is not None and all(r.id != current for r in kept):
        kept += [r for r in releases if r.id == current]
    return kept


def images_to_keep(
    releases: Sequence[Release], retain: int, current: str | None = None
) -> set[str]:
    """Image tags of :func:`releases_to_keep` (anything else may be pruned)."""
    return {image for r in releases_to_keep(releases, retain, current) for image in r.images}


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
