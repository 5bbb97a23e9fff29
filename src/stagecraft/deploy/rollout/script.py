"""One remote script per service step: start the new containers and wait until they are ready.

What used to be a dozen SSH commands (list, remove stale, ``compose up``, list
again, inspect every half second, inspect for addresses) is one ``sh`` script
per step and host. It prints tagged lines the rollout reads as they arrive:

- ``@old <ids>``: the service's running containers before the step;
- ``@new <ids>``: the containers this step started (printed as soon as known,
  so an interrupted step can still remove them);
- ``@ready``, ``@failed <why>`` (not ready: a health problem) or ``@error <what>``
  (the step could not start anything: no release directory, ``compose up`` failed);
- ``@addr <id> <ip>``: each old and new container's address on the
  ``stagecraft`` network (what the proxy switch and the drain need).

Ready means (issue 15, "readiness from events"):

- a container with a Docker healthcheck: the moment Docker reports it
  ``healthy`` (``docker events``, replayed from before ``compose up``, so no
  event is missed and nothing is polled); ``unhealthy`` or ``die`` fails;
- else, with an x-stagecraft HTTP check: the check answers 2xx, probed from
  the host at a short interval that doubles up to the check's ``interval``;
- else: the container kept running (same start time) for ``ready_after``
  seconds.

Example::

    script = start_script(StartSpec("fleet-prod", "/var/lib/.../r1", "web", add=1,
                                    side_by_side=True, timeout=60, http_check=None,
                                    ready_after=3.0, network="stagecraft"))
    result = parse_start(host.run(["sh", "-c", script], check=False).stdout)
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass, field

from stagecraft.deploy.rollout.steps import HttpCheck

FIRST_INTERVAL = 0.05
"""Seconds before the second HTTP probe; each wait doubles up to the check's interval."""


@dataclass(frozen=True)
class StartSpec:
    """What the start script does for one service on one host."""

    project_name: str
    release_dir: str
    service: str
    add: int | None
    """Side by side: new containers to start next to the running ones (None: plain ``up``)."""
    side_by_side: bool
    timeout: float
    http_check: HttpCheck | None
    ready_after: float
    network: str


@dataclass
class StartResult:
    """What the start script reported (``problem`` None when the new containers are ready)."""

    old: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    ready: bool = False
    problem: str | None = None
    error: str | None = None
    addresses: dict[str, str] = field(default_factory=dict)

    def feed(self, line: str) -> None:
        """Take one output line of the script (others are ignored)."""
        tag, _, rest = line.strip().partition(" ")
        if tag == "@old":
            self.old = rest.split()
        elif tag == "@new":
            self.new = rest.split()
        elif tag == "@ready":
            self.ready = True
        elif tag == "@failed":
            self.problem = rest.strip() or "failed"
        elif tag == "@error":
            self.error = rest.strip() or "failed"
        elif tag == "@addr":
            fields = rest.split()
            if len(fields) == 2:
                self.addresses[fields[0]] = fields[1]


def parse_start(text: str) -> StartResult:
    """The :class:`StartResult` of the script's whole output."""
    result = StartResult()
    for line in text.splitlines():
        result.feed(line)
    return result


def start_script(spec: StartSpec) -> str:
    """POSIX sh for one step (see the module docstring); exits 0 when ready."""
    q = shlex.quote
    filters = (
        f"--filter label=com.docker.compose.project={q(spec.project_name)} "
        f"--filter label=com.docker.compose.service={q(spec.service)}"
    )
    up = "up -d --no-deps"
    if spec.add is not None:
        up += f' --no-recreate --scale "{spec.service}=$scale"'
    timeout = max(1, round(spec.timeout))
    lines = [
        "set -u",
        f"cd {q(spec.release_dir)} || {{ echo '@error no release directory'; exit 1; }}",
        "since=$(( $(date +%s) - 1 ))",
        f"old=$(docker ps -q --no-trunc {filters})",
        'echo "@old" $old',
        f"scale=$(( $(echo $old | wc -w) + {int(spec.add or 0)} ))",
        # new: every container of the service (all states) that is not an old one
        "others() { for i in $(docker ps -aq --no-trunc " + filters + "); do "
        'case " $old " in *" $i "*) ;; *) printf "%s " "$i" ;; esac; done; }',
    ]
    if spec.side_by_side:
        lines.append('stale=$(others); [ -z "$stale" ] || docker rm -f $stale >/dev/null')
    lines += [
        # One `compose up` at a time per app and host: two at once would each create the
        # project's network (Docker then holds two of that name and refuses both).
        f"out=$(flock {q(compose_lock(spec.release_dir))} "
        f"docker compose -p {q(spec.project_name)} {up} {q(spec.service)} 2>&1) || "
        '{ echo "@error docker compose up failed: $(printf %s "$out" | tail -n 3 | tr "\\n" " ")"; '
        "exit 1; }",
        "new=$(others)",
        '[ -n "$new" ] || { echo "@error compose started no new container"; exit 1; }',
        'echo "@new" $new',
        f"end=$(( $(date +%s) + {timeout} ))",
        "health=$(docker inspect --format "
        "'{{if .State.Health}}yes{{else}}no{{end}}' $new | sort -u | head -n 1)",
        _wait(spec),
        'docker inspect --format "{{.Id}} {{with index .NetworkSettings.Networks '
        f'\\"{spec.network}\\"}}}}{{{{.IPAddress}}}}{{{{end}}}}" $old $new 2>/dev/null '
        '| while read -r id ip; do [ -n "$ip" ] && echo "@addr $id $ip"; done',
        'if [ "$ok" = yes ]; then echo "@ready"; exit 0; fi',
        'echo "@failed $why"; exit 1',
    ]
    return "\n".join(lines) + "\n"


def compose_lock(release_dir: str) -> str:
    """The lock file ``compose up`` runs under: in the app's directory, beside ``releases/``.

    >>> compose_lock("/var/lib/stagecraft/apps/shop/prod/releases/r1")
    '/var/lib/stagecraft/apps/shop/prod/compose.lock'
    """
    return posixpath.join(posixpath.dirname(posixpath.dirname(release_dir)), "compose.lock")


def _wait(spec: StartSpec) -> str:
    """Shell that sets ``ok=yes`` or ``why=<reason>``: health events, HTTP check or uptime."""
    timeout = max(1, round(spec.timeout))
    health = (
        # Replay from before `compose up` and follow until the deadline: no missed event.
        f'ok=no; why="Docker healthcheck: not healthy after {timeout}s"; '
        'n=0; want=$(echo $new | wc -w); seen=" "\n'
        'd=$(mktemp -d); mkfifo "$d/ev"\n'
        'docker events --since "$since" --until "$end" '
        '$(for i in $new; do printf -- "--filter container=%s " "$i"; done) '
        "--filter event=health_status --filter event=die "
        "--format '{{.Actor.ID}} {{.Action}}' > \"$d/ev\" 2>/dev/null & ev=$!\n"
        'while read -r id action state; do case "$action" in\n'
        '  die) why="exited (its process ended)"; break ;;\n'
        '  health_status:) case "$state" in\n'
        '    unhealthy) why="Docker healthcheck: unhealthy"; break ;;\n'
        '    healthy) case "$seen" in *" $id "*) ;; *) seen="$seen$id "; n=$((n + 1)) ;; esac\n'
        '      if [ "$n" -ge "$want" ]; then ok=yes; break; fi ;;\n'
        "  esac ;;\n"
        'esac; done < "$d/ev"\n'
        'kill "$ev" 2>/dev/null; rm -rf "$d"'
    )
    if spec.http_check is not None:
        check = spec.http_check
        seconds = max(1, round(check.timeout))
        why = f"HTTP GET {check.path} on port {check.port} did not answer 2xx after {timeout}s"
        other = (
            f"ok=no; why={shlex.quote(why)}\n"
            f"wait={FIRST_INTERVAL}\n"
            "while :; do\n"
            "  bad=0; for i in $new; do\n"
            "    set -- $(docker inspect --format '{{.State.Status}} "
            '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}\' "$i")\n'
            '    case "${1:-gone}" in\n'
            '      exited|dead|gone) why="exited (${1:-gone})"; break 2 ;;\n'
            "    esac\n"
            f'    url="http://${{2:-none}}:{check.port}"{shlex.quote(check.path)}\n'
            f'    if command -v curl >/dev/null; then curl -fsS -o /dev/null -m {seconds} "$url" '
            "2>/dev/null || bad=1\n"
            f'    else wget -q -T {seconds} -O /dev/null "$url" 2>/dev/null || bad=1; fi\n'
            "  done\n"
            '  if [ "$bad" = 0 ]; then ok=yes; break; fi\n'
            '  [ "$(date +%s)" -lt "$end" ] || break\n'
            '  sleep "$wait"\n'
            f'  wait=$(awk -v w="$wait" \'BEGIN {{w *= 2; if (w > {check.interval:g}) '
            f"w = {check.interval:g}; print w}}')\n"
            "done"
        )
    else:
        other = (
            "fmt='{{.State.Status}} {{.State.StartedAt}}'\n"
            'before=$(docker inspect --format "$fmt" $new)\n'
            f"sleep {spec.ready_after:g}\n"
            'after=$(docker inspect --format "$fmt" $new 2>/dev/null)\n'
            'ok=no; why="exited or restarted within '
            f'{spec.ready_after:g}s (it must keep running that long to count as ready)"\n'
            'if [ "$before" = "$after" ] && ! printf "%s\\n" "$after" | grep -qv "^running "; '
            "then ok=yes; fi"
        )
    return f'if [ "$health" = yes ]; then\n{health}\nelse\n{other}\nfi'


def stop_script(ids: list[str], grace: float) -> str:
    """POSIX sh: stop ``ids`` (their stop signal, KILL after ``grace``), then remove them."""
    joined = " ".join(shlex.quote(i) for i in ids)
    seconds = max(1, round(grace))
    return f"docker stop -t {seconds} {joined} >/dev/null; docker rm -f {joined} >/dev/null"
