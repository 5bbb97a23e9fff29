"""After the rollout: a ledger record on every host reached, and pruning old images.

Example::

    record(release, jobs, secrets, started_at, command="deploy")  # after the rollout
    prune(hosts, release, retain=5)   # after the lock is released: this env's old images only
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from stagecraft import log
from stagecraft.deploy.release import Release
from stagecraft.deploy.rollout import Progress
from stagecraft.deploy.rollout.result import HostJob, host_outcome
from stagecraft.deploy.state import ledger, lock
from stagecraft.deploy.state.layout import STATE_ROOT, app_dir
from stagecraft.errors import StagecraftError
from stagecraft.providers.secrets import SecretValue
from stagecraft.runtime.fanout import describe, fan_out
from stagecraft.runtime.ssh import SSHHost

logger = logging.getLogger(__name__)


def record(
    release: Release,
    jobs: Sequence[HostJob],
    secrets: Mapping[str, SecretValue],
    started: str,
    *,
    command: str,
) -> None:
    """Append each reachable host's ledger record (per-service outcomes); never raises."""
    finished = datetime.now(UTC).isoformat(timespec="seconds")
    peers = {job.name: host_outcome(job) for job in jobs}

    def one(job: HostJob) -> None:
        if job.plan is None or job.plan.error is not None:
            return  # never reached: nothing to record there
        outcome = host_outcome(job)
        by_service = {o.service: o for o in job.outcomes}
        images = _image_ids(job.host, [s.image for s in job.rendered.services.values()])
        services = {}
        for name, svc in job.rendered.services.items():
            done = by_service.get(name)
            state = done.outcome if done else ("interrupted" if job.interrupted else "skipped")
            services[name] = ledger.ServiceRecord(
                svc.image,
                images.get(svc.image),
                svc.config_hash,
                state,
                done.error if done else None,
            )
        record = ledger.LedgerRecord(
            release=release.id,
            version=release.version.value,
            env=release.env or "",
            host=job.name,
            started_at=started,
            finished_at=finished,
            by=lock.local_identity(),
            command=command,
            outcome=outcome,
            services=services,
            peers=peers,
        )
        ledger.append(job.host, release.project, record, secrets=list(secrets.values()))

    result = fan_out(list(jobs), one, name=lambda j: j.name, parallel=8)
    for failed in result.failed:
        log.event(
            logger,
            logging.ERROR,
            f"ledger not written: {describe(failed.name, failed.error)}",
            host=failed.name,
            phase="record",
        )


def prune(
    hosts: Sequence[SSHHost],
    release: Release,
    *,
    retain: int,
    parallel: int = 4,
    progress: Progress | None = None,
) -> None:
    """Remove this environment's release images beyond its last ``retain`` releases (best effort).

    Only images that this environment's ledger records are candidates (environments of
    one project share image names). Each host keeps every image that another
    environment's ledger on it still retains (its last ``retain`` successful releases,
    as that environment's own prune wrote to ``retain`` next to its ledger, and its
    newest release; all of them when it never said), so staging's deploys never remove
    production's rollback images, even when both ran the same version. Images a
    container still uses are refused by Docker and stay.
    """
    found = prunable(
        hosts, release.project, release.env or "", retain=retain, current=release.id,
        parallel=parallel, record_retain=True,
    )  # fmt: skip
    remove_images(hosts, found, parallel=parallel, progress=progress)


def remove_images(
    hosts: Sequence[SSHHost],
    found: Mapping[str, tuple[str, ...] | BaseException],
    *,
    parallel: int = 4,
    progress: Progress | None = None,
) -> None:
    """Remove what :func:`prunable` found on each host, hosts in parallel (best effort)."""
    by_name = {h.name: h for h in hosts}

    def one(name: str) -> None:
        old = found[name]
        if isinstance(old, BaseException) or not old:
            return
        by_name[name].docker("image", "rm", *old, check=False)
        message = f"pruned up to {len(old)} old image(s)"
        log.event(logger, logging.DEBUG, message, host=name, phase="prune")
        if progress is not None:
            progress(name, None, message)

    fan_out(list(found), one, name=lambda n: n, parallel=parallel)


def prunable(
    hosts: Sequence[SSHHost],
    project: str,
    env: str,
    *,
    retain: int,
    current: str | None = None,
    parallel: int = 4,
    record_retain: bool = False,
) -> dict[str, tuple[str, ...] | BaseException]:
    """Per host, this environment's images that the retain policy lets go (or why not read).

    ``current`` (default: the newest release) is always kept. With
    ``record_retain``, ``retain`` is written next to the ledger for the other
    environments' prunes to honour.
    """
    try:
        found = ledger.history(hosts, project, env)
    except StagecraftError as exc:
        return {host.name: exc for host in hosts}
    if current is None and found.releases:
        current = found.releases[0].id
    ours = {image for r in found.releases for image in r.images}
    candidates = ours - ledger.images_to_keep(found.releases, retain, current)

    def one(host: SSHHost) -> tuple[str, ...]:
        others = retained_elsewhere(
            host, project, env, record_retain=retain if record_retain else None
        )
        listed = host.docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", check=False)
        return tuple(sorted((set(listed.stdout.split()) & candidates) - others))

    result = fan_out(list(hosts), one, name=lambda h: h.name, parallel=parallel)
    return {
        o.name: o.value if o.value is not None else (o.error or StagecraftError("not read"))
        for o in result.outcomes
    }


_LEDGER_HEADER = "#stagecraft-ledger "


def retained_elsewhere(
    host: SSHHost, project: str, env: str, *, record_retain: int | None = None
) -> set[str]:
    """The images that the other environments with a ledger on ``host`` retain.

    Each keeps its last ``retain`` successful releases (as its own prune wrote
    next to its ledger) and its newest release; all of them when it never said.
    With ``record_retain``, this environment's ``retain`` is written first.
    """
    mine = app_dir(project, env)
    write = (
        f'mkdir -p "$me" && printf "%s\\n" {record_retain} > "$me/retain.tmp" '
        '&& mv -f "$me/retain.tmp" "$me/retain" || exit 1; '
        if record_retain is not None
        else ""
    )
    script = (
        f"me={shlex.quote(mine)}; {write}"
        f"for f in {shlex.quote(STATE_ROOT)}/apps/*/*/ledger.jsonl; do "
        '[ -f "$f" ] || continue; d="${f%/ledger.jsonl}"; [ "$d" = "$me" ] && continue; '
        'r="$(cat "$d/retain" 2>/dev/null)"; '
        f'printf "\\n{_LEDGER_HEADER}%s %s\\n" "${{r:-all}}" "$d"; cat "$f"; done'
    )
    text = host.run(["sh", "-c", script]).stdout
    kept: set[str] = set()
    for chunk in text.split("\n" + _LEDGER_HEADER)[1:]:
        header, _, body = chunk.partition("\n")
        count = header.split(" ", 1)[0]
        releases = ledger.merge(ledger.parse_lines(body, host=host.name))
        if not releases:
            continue
        if not count.isdigit():  # an environment that never said what it retains: all of it
            kept |= {image for r in releases for image in r.images}
            continue
        kept |= ledger.images_to_keep(releases, int(count), releases[0].id)
    return kept


def _image_ids(host: SSHHost, images: Sequence[str]) -> dict[str, str]:
    """``image -> sha256:...`` as the host knows them (missing ones left out)."""
    if not images:
        return {}
    result = host.docker(
        "image", "inspect", "--format", "{{.Id}}", *sorted(set(images)), check=False
    )
    ids = result.stdout.split()
    names = sorted(set(images))
    return dict(zip(names, ids, strict=False)) if len(ids) == len(names) else {}
