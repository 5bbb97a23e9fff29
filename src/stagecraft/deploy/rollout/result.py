"""The outcome of a deploy or rollback as values: per host and service, and its error.

:class:`DeployResult` is what :func:`stagecraft.deploy.pipeline.deploy` returns;
:class:`DeployFailed` carries the same result when a host failed, with the exit
code of the worst cause (3 health check, 5 only unreachable hosts, else 1);
:class:`PostHookFailed` carries a successful result whose post hook failed (exit 1).
:class:`HostJob` is one host's work while the pipeline runs.

Example::

    try:
        result = deploy(loaded, "production")
    except DeployFailed as exc:
        result = exc.result
    print(render_result(result))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stagecraft.deploy.hooks import HookFailed
from stagecraft.deploy.plan import HostPlan
from stagecraft.deploy.render import RenderedHost
from stagecraft.deploy.rollout import HostContext, ServiceOutcome
from stagecraft.deploy.rollout.steps import Step
from stagecraft.errors import ExitCode, StagecraftError
from stagecraft.runtime.fanout import describe, fan_out
from stagecraft.runtime.ssh import SSHHost


@dataclass(frozen=True)
class HostResult:
    """One host's outcome: success, failed, interrupted or skipped; per-service outcomes."""

    host: str
    outcome: str
    services: tuple[ServiceOutcome, ...] = ()
    error: str | None = None
    exit_code: ExitCode = ExitCode.OK
    shipped: dict[str, Any] | None = None  # what shipping sent it (bytes, layers, images)

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "outcome": self.outcome,
            "error": self.error,
            "shipped": self.shipped,
            "services": [
                {"service": s.service, "action": s.action, "outcome": s.outcome, "error": s.error}
                for s in self.services
            ],
        }


@dataclass(frozen=True)
class DeployResult:
    """The whole deploy: release, version, command and every host's result."""

    project: str
    env: str
    release: str
    version: str
    command: str
    hosts: tuple[HostResult, ...]

    @property
    def ok(self) -> bool:
        return all(h.outcome == "success" for h in self.hosts)

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "env": self.env,
            "release": self.release,
            "version": self.version,
            "command": self.command,
            "outcome": "success" if self.ok else "failed",
            "hosts": [h.to_json() for h in self.hosts],
        }


class DeployFailed(StagecraftError):
    """Some hosts failed; ``result`` holds every host's outcome (exit code: the worst cause)."""

    def __init__(self, result: DeployResult) -> None:
        failed = [h for h in result.hosts if h.outcome != "success"]
        names = ", ".join(h.host for h in failed)
        super().__init__(
            f"{result.command} of {result.version} to {result.env} failed on {names}",
            hint="the old release keeps serving where a host failed; fix the cause and run "
            f"`stagecraft deploy --env {result.env}` again",
        )
        self.result = result
        codes = {h.exit_code for h in failed if h.exit_code != ExitCode.OK}
        if ExitCode.HEALTH_CHECK_FAILED in codes:
            self.exit_code = ExitCode.HEALTH_CHECK_FAILED
        elif codes == {ExitCode.UNREACHABLE}:
            self.exit_code = ExitCode.UNREACHABLE
        else:
            self.exit_code = ExitCode.FAILED

    def lines(self) -> list[str]:
        lines = [self.message]
        for host in self.result.hosts:
            if host.outcome != "success":
                lines.append(f"  {host.host}: {host.outcome}: {host.error or ''}".rstrip(": "))
        return lines


class PostHookFailed(HookFailed):
    """The deploy or rollback succeeded, then its post hook failed; ``result`` is the success."""

    def __init__(self, result: DeployResult, failure: HookFailed) -> None:
        super().__init__(
            failure.hook,
            failure.message,
            returncode=failure.returncode,
            tail=failure.tail,
            hint=failure.hint,
        )
        self.result = result


@dataclass
class HostJob:
    """One host's work: its connection, rendering, plan, and results so far."""

    host: SSHHost
    rendered: RenderedHost
    plan: HostPlan | None = None
    ctx: HostContext | None = None
    steps: list[Step] = field(default_factory=list)
    outcomes: list[ServiceOutcome] = field(default_factory=list)
    error: str | None = None
    exit_code: ExitCode = ExitCode.OK
    interrupted: bool = False
    shipped: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def alive(self) -> bool:
        return self.error is None and not self.interrupted

    def fail(self, error: BaseException) -> None:
        self.error = describe(self.name, error)
        code = error.exit_code if isinstance(error, StagecraftError) else ExitCode.INTERNAL
        self.exit_code = code if self.exit_code == ExitCode.OK else self.exit_code


def run_jobs(jobs: Sequence[HostJob], fn: Callable[[HostJob], None], parallel: int) -> None:
    """``fn`` on every job in parallel; a job whose ``fn`` raised is failed with that error."""
    result = fan_out(list(jobs), fn, name=lambda j: j.name, parallel=parallel)
    by_name = {j.name: j for j in jobs}
    for outcome in result.failed:
        if outcome.error is not None:
            by_name[outcome.name].fail(outcome.error)


def host_outcome(job: HostJob) -> str:
    if job.interrupted:
        return "interrupted"
    return "success" if job.error is None else "failed"


def host_result(job: HostJob) -> HostResult:
    return HostResult(
        job.name,
        host_outcome(job),
        tuple(job.outcomes),
        job.error,
        job.exit_code,
        job.shipped,
    )


def render_result(result: DeployResult) -> str:
    """The aggregate per host and service, as text (what the CLI prints at the end)."""
    lines = [f"{result.command} {result.version} to {result.env} ({result.release})"]
    for host in result.hosts:
        lines.append(f"  {host.host}: {host.outcome}" + (f" ({host.error})" if host.error else ""))
        for service in host.services:
            lines.append(f"    {service.service}: {service.action} {service.outcome}")
    lines.append("ok" if result.ok else "failed")
    return "\n".join(lines)
