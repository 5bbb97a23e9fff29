"""Deploy hooks: the project's executables in ``.stagecraft/hooks/``, run locally around
``deploy`` and ``rollback`` (Kamal's hooks).

A hook is an executable file named after the moment it runs at: ``pre-build``,
``pre-deploy``, ``post-deploy``, ``pre-rollback``, ``post-rollback`` or
``on-failure`` (:data:`ORDER`). It runs on the deploying machine through the
process gateway (:func:`stagecraft.runtime.process.run`), with the project root
as its working directory, no stdin, the ``STAGECRAFT_*`` variables of
:meth:`HookRunner.environment` on top of the deploying process's environment
(minus any variable that holds a resolved secret value), and :data:`TIMEOUT`
seconds to finish (then its whole process group is killed). Every output line is
redacted (:func:`stagecraft.redact.redact`) before it reaches the ``on_line``
callback or an error message. :meth:`HookRunner.pre`, :meth:`~HookRunner.post` and
:meth:`~HookRunner.on_failure` say what a failure means at each moment; *when* each
runs is the pipeline's business (:mod:`stagecraft.deploy.pipeline`; docs/deploy.md,
"Hooks").

Example::

    from stagecraft.deploy import hooks

    found = hooks.discover(loaded.root, "deploy")   # HookNotExecutable for a file without +x
    found.planned()                                 # ('pre-deploy', 'post-deploy')
    runner = hooks.HookRunner(
        found,
        hooks.HookContext("deploy", "shop", "production", "v2", "20261124T001500Z-v2",
                          ("web-1", "web-2"), "alice@laptop"),
        secrets=secrets.values(),                  # never passed on, redacted from the output
        on_line=lambda hook, line: print(f"[hook {hook}] {line}"),
    )
    runner.pre("pre-deploy")        # HookFailed (non-zero exit, timeout): "... aborted"
    runner.post()                   # post-deploy, with STAGECRAFT_OUTCOME=success
    runner.on_failure("failed")     # on-failure; its own failure is only logged
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from stagecraft import log, redact
from stagecraft.errors import CommandTimeout, ExitCode, PrerequisiteMissing, StagecraftError
from stagecraft.runtime import process

logger = logging.getLogger(__name__)

Command = Literal["deploy", "rollback"]
Outcome = Literal["success", "failed", "interrupted"]
HookLine = Callable[[str, str], None]
"""``on_line(hook, line)``: one (redacted) output line of a running hook."""

HOOKS_DIR = Path(".stagecraft") / "hooks"
"""Where hooks live, relative to the project root (the directory of stagecraft.yml)."""
TIMEOUT = 300.0
"""Seconds a hook may run; then its process group gets SIGTERM, and SIGKILL 2 s later."""
TAIL_LINES = 10
"""Output lines of a failed hook that its error shows."""

ORDER: Mapping[Command, tuple[str, ...]] = {
    "deploy": ("pre-build", "pre-deploy", "post-deploy", "on-failure"),
    "rollback": ("pre-rollback", "post-rollback", "on-failure"),
}
"""The hooks of each command, in the order they can run."""
HOOK_NAMES = (
    "pre-build",
    "pre-deploy",
    "post-deploy",
    "pre-rollback",
    "post-rollback",
    "on-failure",
)
WHEN = {
    "pre-build": "when an image is built",
    "post-deploy": "on success",
    "post-rollback": "on success",
    "on-failure": "if it fails",
}
"""Conditions shown by :meth:`Hooks.describe` (a hook not listed always runs)."""

_OWN = ("STAGECRAFT_OUTCOME", "STAGECRAFT_RUNTIME")  # set for post and on-failure hooks only


class HookError(StagecraftError):
    """A hook cannot be run or failed (exit code 1)."""

    exit_code = ExitCode.FAILED


class HookNotExecutable(HookError):
    """A file in the hooks directory has a hook's name but cannot be executed."""


class HookFailed(HookError):
    """A hook exited non-zero or timed out; ``tail`` holds its last output lines (redacted)."""

    def __init__(
        self,
        hook: str,
        message: str,
        *,
        returncode: int | None,
        tail: Iterable[str] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.hook = hook
        self.returncode = returncode
        self.tail = tuple(tail)

    def lines(self) -> list[str]:
        return [self.message, *(f"  [hook {self.hook}] {line}" for line in self.tail)]

    def because(self, consequence: str, *, hint: str) -> HookFailed:
        """The same failure saying what it meant for the command (and what to do)."""
        return HookFailed(
            self.hook,
            f"{self.message}: {consequence}",
            returncode=self.returncode,
            tail=self.tail,
            hint=f"{self.hint}; {hint}" if self.hint else hint,
        )


@dataclass(frozen=True)
class Hooks:
    """The hook executables of a project for one command, by name."""

    root: Path
    command: Command
    paths: Mapping[str, Path] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.paths

    def planned(self) -> tuple[str, ...]:
        """Names of the hooks present, in the order they can run."""
        return tuple(name for name in ORDER[self.command] if name in self.paths)

    def describe(self) -> str:
        """One line for ``--dry-run``: which hooks would run, and when."""
        names = [f"{n} ({WHEN[n]})" if n in WHEN else n for n in self.planned()]
        where = HOOKS_DIR.as_posix()
        if not names:
            return f"hooks: none in {where}"
        return f"hooks that would run ({where}): {', '.join(names)}"


def discover(root: Path, command: Command) -> Hooks:
    """The hooks of ``command`` in ``root``'s hooks directory (none when it does not exist).

    Raises :class:`HookNotExecutable` for a hook file without the execute bit (or
    that is not a file), naming the file and the fix. Files that are no hook's
    name (a typo such as ``predeploy``) are reported in a warning and ignored;
    ``*.sample`` files and dotfiles are ignored silently.
    """
    directory = root / HOOKS_DIR
    if not directory.is_dir():
        return Hooks(root, command)
    found: dict[str, Path] = {}
    for name in ORDER[command]:
        path = directory / name
        if not path.exists() and not path.is_symlink():
            continue
        shown = _shown(name)
        if not path.is_file():
            what = "a broken link" if path.is_symlink() and not path.exists() else "not a file"
            raise HookNotExecutable(
                f"hook {shown} is {what}", hint=f"make {shown} an executable file, or remove it"
            )
        if not os.access(path, os.X_OK):
            raise HookNotExecutable(
                f"hook {shown} is not executable",
                hint=f"run `chmod +x {shown}` in {root} (git records the mode when committed)",
            )
        found[name] = path
    _warn_unknown(directory)
    return Hooks(root, command, found)


def _warn_unknown(directory: Path) -> None:
    unknown = sorted(
        entry.name
        for entry in directory.iterdir()
        if entry.name not in HOOK_NAMES
        and not entry.name.startswith(".")
        and not entry.name.endswith(".sample")
    )
    if unknown:
        log.event(
            logger,
            logging.WARNING,
            f"{HOOKS_DIR.as_posix()}: {', '.join(unknown)} is no hook name and never runs "
            f"(hooks: {', '.join(HOOK_NAMES)})",
            phase="hooks",
        )


@dataclass(frozen=True)
class HookContext:
    """What a hook is told about the command it runs in (``STAGECRAFT_*`` variables)."""

    command: Command
    project: str
    env: str
    version: str
    release: str
    hosts: tuple[str, ...]
    performer: str


@dataclass(frozen=True)
class HookRun:
    """A hook that ran and exited 0."""

    hook: str
    seconds: float


class HookRunner:
    """Runs the hooks of one deploy or rollback with its context; see the module docstring."""

    def __init__(
        self,
        hooks: Hooks,
        context: HookContext,
        *,
        secrets: Iterable[redact.Revealable] = (),
        environ: Mapping[str, str] | None = None,
        on_line: HookLine | None = None,
        say: Callable[[str], None] | None = None,
        timeout: float = TIMEOUT,
        started: float | None = None,
    ) -> None:
        self.hooks = hooks
        self.context = context
        held = list(secrets)
        self._secrets = {s.reveal() for s in held} - {""}
        self._guard = redact.Redactor(held)
        self._environ = environ
        self._on_line = on_line
        self._say = say
        self.timeout = timeout
        self.started = time.monotonic() if started is None else started

    def has(self, name: str) -> bool:
        return self.hooks.has(name)

    def pre(self, name: str) -> None:
        """Run a ``pre-*`` hook; its failure says the command stopped before any host changed."""
        try:
            self._announced(name)
        except HookFailed as exc:
            command = self.context.command
            raise exc.because(
                f"{command} aborted before anything on the hosts changed",
                hint=f"the deploy lock is released; fix {_shown(name)}, or {command} with "
                "--skip-hooks",
            ) from None

    def post(self) -> None:
        """Run the ``post-*`` hook of a successful command; its failure says the release stands."""
        name = f"post-{self.context.command}"
        try:
            self._announced(name, outcome="success")
        except HookFailed as exc:
            command = self.context.command
            raise exc.because(
                f"the {command} itself succeeded: release {self.context.release} stays "
                "recorded as successful",
                hint=f"only the hook failed; fix {_shown(name)} (run it by hand if its work "
                "is needed)",
            ) from None

    def on_failure(self, outcome: Outcome) -> None:
        """Run the ``on-failure`` hook; its own failure is logged, never raised."""
        try:
            self._announced("on-failure", outcome=outcome)
        except HookError as exc:
            log.event(
                logger,
                logging.WARNING,
                f"{exc.message} (the exit code stays that of the failed {self.context.command})",
                host="local",
                phase="hooks",
            )

    def _announced(self, name: str, *, outcome: Outcome | None = None) -> None:
        if self.has(name) and self._say is not None:
            self._say(f"running hook {name}")
        self.run(name, outcome=outcome)

    def run(self, name: str, *, outcome: Outcome | None = None) -> HookRun | None:
        """Run hook ``name`` if the project has it (else None); :class:`HookFailed` if it fails.

        ``outcome`` (post and on-failure hooks) adds ``STAGECRAFT_OUTCOME`` and
        ``STAGECRAFT_RUNTIME``. Ctrl-C stops the hook's process group and propagates.
        """
        path = self.hooks.paths.get(name)
        if path is None:
            return None
        tail: deque[str] = deque(maxlen=TAIL_LINES)

        def line(_stream: str, text: str) -> None:
            shown = redact.redact(text, self._guard)
            tail.append(shown)
            if self._on_line is not None:
                self._on_line(name, shown)
            else:
                log.event(logger, logging.INFO, shown, host="local", phase=f"hook {name}")

        log.event(logger, logging.DEBUG, f"running hook {name}: {path}", phase="hooks")
        try:
            result = process.run(
                [str(path)],
                cwd=self.hooks.root,
                env=self.environment(name, outcome=outcome),
                timeout=self.timeout,
                check=False,
                on_line=line,
            )
        except CommandTimeout:
            raise HookFailed(
                name,
                f"hook {name} did not finish within {self.timeout:g}s "
                "(its process group was killed)",
                returncode=None,
                tail=tail,
            ) from None
        except (OSError, PrerequisiteMissing) as exc:  # e.g. no #! line: Exec format error
            reason = exc.strerror if isinstance(exc, OSError) else exc.message
            raise HookFailed(
                name,
                f"hook {name} could not be started: {reason}",
                returncode=None,
                hint=f"start {_shown(name)} with a #! line, e.g. #!/bin/sh",
            ) from None
        if result.returncode != 0:
            raise HookFailed(
                name,
                f"hook {name} exited with {result.returncode}",
                returncode=result.returncode,
                tail=tail,
            )
        return HookRun(name, result.duration)

    def environment(self, name: str, *, outcome: Outcome | None = None) -> dict[str, str]:
        """The hook's environment: the deploying process's, minus variables holding a
        resolved secret value, plus ``STAGECRAFT_*`` (docs/deploy.md has the table)."""
        parent = os.environ if self._environ is None else self._environ
        withheld = {k for k, v in parent.items() if self._holds_secret(v)}
        if withheld:
            log.event(
                logger,
                logging.DEBUG,
                f"hook {name}: not passing {', '.join(sorted(withheld))} (they hold secret values)",
                phase="hooks",
            )
        env = {k: v for k, v in parent.items() if k not in withheld and k not in _OWN}
        ctx = self.context
        env.update(
            STAGECRAFT_HOOK=name,
            STAGECRAFT_COMMAND=ctx.command,
            STAGECRAFT_PROJECT=ctx.project,
            STAGECRAFT_ENV=ctx.env,
            STAGECRAFT_VERSION=ctx.version,
            STAGECRAFT_RELEASE=ctx.release,
            STAGECRAFT_HOSTS=",".join(ctx.hosts),
            STAGECRAFT_PERFORMER=ctx.performer,
        )
        if outcome is not None:
            env["STAGECRAFT_OUTCOME"] = outcome
            env["STAGECRAFT_RUNTIME"] = str(round(time.monotonic() - self.started))
        return env

    def _holds_secret(self, value: str) -> bool:
        if value in self._secrets:
            return True
        return self._guard.find(value) is not None or redact.KNOWN.find(value) is not None


def _shown(name: str) -> str:
    return (HOOKS_DIR / name).as_posix()


__all__ = [
    "HOOKS_DIR",
    "HOOK_NAMES",
    "ORDER",
    "TIMEOUT",
    "HookContext",
    "HookError",
    "HookFailed",
    "HookNotExecutable",
    "HookRun",
    "HookRunner",
    "Hooks",
    "discover",
]
