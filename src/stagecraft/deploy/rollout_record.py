"""After the rollout: a ledger record on every host reached, and pruning old images.

Example::

    record(release, jobs, secrets, started_at, command="deploy")  # after the rollout
    prune(hosts, release, retain=5)                                # after the lock is released
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from stagecraft import log
from stagecraft.deploy import ledger, lock
from stagecraft.deploy.release import Release
from stagecraft.deploy.rollout import Progress
from stagecraft.deploy.rollout_result import HostJob, host_outcome
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
    """Remove this project's release images beyond the last ``retain`` releases (best effort)."""
    try:
        found = ledger.history(hosts, release.project, release.env or "")
    except StagecraftError:
        return
    keep = ledger.images_to_keep(found.releases, retain, release.id)
    prefix = f"{release.repository}/"

    def one(host: SSHHost) -> None:
        listed = host.docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", check=False)
        old = [
            image
            for image in listed.stdout.split()
            if image.startswith(prefix) and image not in keep and not image.endswith(":<none>")
        ]
        if old:
            # Images still used by a container are refused by Docker and stay.
            host.docker("image", "rm", *old, check=False)
            message = f"pruned up to {len(old)} old image(s)"
            log.event(logger, logging.DEBUG, message, host=host.name, phase="prune")
            if progress is not None:
                progress(host.name, None, message)

    fan_out(list(hosts), one, name=lambda h: h.name, parallel=parallel)


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
