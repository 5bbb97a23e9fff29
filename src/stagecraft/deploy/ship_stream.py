"""One ``docker save`` streamed to several hosts' ``docker load`` at once.

Hosts that lack the same images get one export from the local daemon, copied
by ``tee`` into one FIFO per host, each read by that host's ``ssh HOST docker
load``: the local daemon exports the layers once whatever the number of hosts,
and nothing is written to disk. A host whose connection fails stops receiving
(``tee -p`` goes on with the others) and gets its own error.

Example::

    sent = stream_to_hosts([web1, web2], ["shop/api:3f2a9c1d0e4b"])
    sent["web-1"]          # bytes streamed, or the StagecraftError of that host
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import tempfile
from collections.abc import Sequence
from pathlib import Path

from stagecraft.errors import CommandFailed, StagecraftError
from stagecraft.runtime import process
from stagecraft.runtime.fanout import fan_out
from stagecraft.runtime.ssh import SSHHost, classify_ssh_failure

_BYTES = re.compile(r"^(\d+) bytes", re.M)
_HINT = "check free disk space on the host and that its Docker daemon runs"


def stream_to_hosts(
    hosts: Sequence[SSHHost], images: Sequence[str], *, timeout: float | None = None
) -> dict[str, int | StagecraftError]:
    """Stream ``images`` to every host in one pipeline; per host the bytes sent or its error.

    Raises :class:`CommandFailed` when the local ``docker save`` itself fails.
    """
    if not hosts or not images:
        return {host.name: 0 for host in hosts}
    if len(hosts) > 1 and not tee_splits():
        # BSD tee (macOS) cannot go on past a broken pipe: one export per host, in parallel.
        each = fan_out(
            list(hosts),
            lambda host: stream_to_hosts([host], images, timeout=timeout)[host.name],
            name=lambda host: host.name,
            parallel=len(hosts),
        )
        each.raise_for_failures("hosts")  # only a failed local export raises
        return {o.name: o.value for o in each.outcomes if o.value is not None}
    with tempfile.TemporaryDirectory(prefix="stagecraft-ship-") as tmp:
        work = Path(tmp)
        script = _script(hosts, work)
        result = process.run(
            ["bash", "-c", script, "ship", *images],
            extra_env={"LC_ALL": "C"},
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise CommandFailed(
                ["docker save", *images],
                result.returncode,
                without_dd_noise(result.stderr),
                hint="check that the images exist on the local Docker daemon",
            )
        counted = _BYTES.search(_read(work / "dd"))
        sent = int(counted.group(1)) if counted else 0
        return {
            host.name: _outcome(host, images, work, index, sent) for index, host in enumerate(hosts)
        }


def _script(hosts: Sequence[SSHHost], work: Path) -> str:
    """The bash pipeline: one background ``ssh docker load`` per FIFO, then save | dd | tee."""
    lines = ["set -o pipefail"]
    fifos = []
    for index, host in enumerate(hosts):
        fifo = work / f"in{index}"
        os.mkfifo(fifo, 0o600)
        fifos.append(shlex.quote(str(fifo)))
        remote = shlex.join(host.ssh_argv("docker load"))
        out = shlex.quote(str(work / f"out{index}"))
        code = shlex.quote(str(work / f"rc{index}"))
        lines.append(f"( {remote} < {fifos[-1]} > {out} 2>&1; echo $? > {code} ) &")
    counter = shlex.quote(str(work / "dd"))
    split = "tee -p" if len(fifos) > 1 else "tee"  # -p: go on when one host's pipe breaks
    lines.append(
        f'docker save "$@" | dd bs=1M 2> {counter} | {split} {" ".join(fifos)} > /dev/null'
    )
    lines.append("saved=${PIPESTATUS[0]}")
    lines.append("wait")
    lines.append('exit "$saved"')
    return "\n".join(lines) + "\n"


@functools.cache
def tee_splits() -> bool:
    """Whether the local ``tee`` has ``-p`` (GNU coreutils: write on past a broken pipe)."""
    try:
        return process.run(["tee", "-p", os.devnull], input="", check=False).returncode == 0
    except StagecraftError:
        return False


def _outcome(
    host: SSHHost, images: Sequence[str], work: Path, index: int, sent: int
) -> int | StagecraftError:
    """The bytes ``host`` received, or why it did not load them."""
    code = _read(work / f"rc{index}").strip()
    returncode = int(code) if code.isdigit() else 1
    output = _read(work / f"out{index}")
    if returncode == 0:
        return sent
    if returncode == 255:
        error = classify_ssh_failure(host.target, output) or host.lost_connection("docker load")
        if error is not None:
            return error
    return CommandFailed(
        ["docker save", *images, "|", "ssh", host.name, "docker load"],
        returncode,
        output,
        host=host.name,
        hint=_HINT,
    )


def _read(path: Path) -> str:
    """A file the pipeline wrote, or "" when it did not get that far."""
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def without_dd_noise(stderr: str) -> str:
    """stderr minus dd's statistics lines (records in/out, bytes copied)."""
    lines = [
        line
        for line in stderr.splitlines()
        if not re.match(r"^\d+\+\d+ records (in|out)$", line) and not _BYTES.match(line)
    ]
    return "\n".join(lines)
