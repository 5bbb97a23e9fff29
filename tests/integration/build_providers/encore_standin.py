#!/usr/bin/env python3
"""A stand-in for the Encore CLI's ``encore build docker`` (the CLI cannot run here).

It implements the documented interface
(https://encore.dev/docs/ts/self-host/build, and ``cli/cmd/encore/build.go`` of
encoredev/encore): ``encore build docker [flags] IMAGE_TAG`` with the flags
``--base`` (default ``scratch``, ``node:slim`` for a TypeScript app),
``--config``, ``--services``, ``--gateways``, ``--os``, ``--arch``, ``--cgo``,
``--skip-config`` and ``--push``/``-p``. Arguments are parsed the way cobra/pflag
do: ``--flag=value`` or ``--flag value``, comma-separated and repeatable lists,
flags anywhere, ``--`` ends them; an unknown flag, a flag without its value or
a number of arguments other than one is an ``Error:`` and exit 1. The app root
is the first directory holding ``encore.app`` from the working directory up
(none: exit 1, as the real CLI).

What differs: the app is not compiled. The stand-in builds a real image with
``docker build`` ``FROM`` the base image, holding the app's sources in
``/workspace`` and ``/encore/build.json`` (what was asked: services, gateways,
target platform, whether telemetry was disabled), plus the infra config at
``/encore/infra.config.json`` (``ENCORE_INFRA_CONFIG_PATH``), tagged with the
requested tag. Pushing is refused (no registry here). When
``ENCORE_STANDIN_LOG`` is set, every invocation is appended to that file as a
JSON line (argv, working directory and the STAGECRAFT_VERSION it got), so
tests can count calls.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

USAGE = """Usage:
  encore build docker IMAGE_TAG [flags]

Flags:
      --arch string       target architecture. One of (amd64, arm64) (default "amd64")
      --base string       base image to build from (default "scratch")
      --cgo               enable cgo
      --config string     infra configuration file path
      --gateways strings  gateways to include in the image
  -h, --help              help for docker
      --os string         target operating system. One of (linux, darwin, windows) (default "linux")
  -p, --push              push image to remote repository
      --services strings  services to include in the image
      --skip-config       do not read or generate a infra configuration file
"""
STRING_FLAGS = frozenset({"base", "os", "arch", "config"})
LIST_FLAGS = frozenset({"services", "gateways"})
BOOL_FLAGS = frozenset({"push", "cgo", "skip-config", "help"})
SHORTHANDS = {"p": "push", "h": "help"}
DEFAULT_GATEWAY = "api-gateway"
IGNORED_DIRS = frozenset({"node_modules", ".encore", ".git"})
SERVICE_DECL = re.compile(r"""new\s+Service\(\s*["']([^"']+)["']""")


class CommandError(Exception):
    """Exit 1 with this message (``Error: ...`` for usage errors, as cobra prints them)."""


@dataclass
class Options:
    """The parsed command line of ``encore build docker``."""

    base: str = "scratch"
    os: str = "linux"
    arch: str = "amd64"
    config: str = ""
    push: bool = False
    cgo: bool = False
    skip_config: bool = False
    help: bool = False
    services: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)
    args: list[str] = field(default_factory=list)


def parse_flags(argv: list[str]) -> Options:
    """Parse ``argv`` (after ``build docker``) like pflag; CommandError on bad input."""
    opts = Options(os=os.environ.get("GOOS") or "linux", arch=os.environ.get("GOARCH") or "amd64")
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg == "--":
            opts.args.extend(argv[index:])
            break
        if arg.startswith("--"):
            name, has_value, value = arg[2:].partition("=")
        elif arg.startswith("-") and len(arg) > 1:
            short = arg[1]
            if short not in SHORTHANDS:
                raise CommandError(f"Error: unknown shorthand flag: {short!r} in {arg}")
            name = SHORTHANDS[short]
            has_value, value = ("=", arg[3:]) if arg[2:3] == "=" else ("", "")
        else:
            opts.args.append(arg)
            continue
        if name in BOOL_FLAGS:
            _set(opts, name, _parse_bool(name, value) if has_value else True)
        elif name in STRING_FLAGS or name in LIST_FLAGS:
            if not has_value:
                if index >= len(argv):
                    raise CommandError(f"Error: flag needs an argument: --{name}")
                value = argv[index]
                index += 1
            if name in LIST_FLAGS:
                getattr(opts, name).extend(item.strip() for item in value.split(",") if item)
            else:
                _set(opts, name, value)
        else:
            raise CommandError(f"Error: unknown flag: --{name}")
        opts.changed.add(name)
    return opts


def _set(opts: Options, name: str, value: object) -> None:
    setattr(opts, name.replace("-", "_"), value)


def _parse_bool(name: str, value: str) -> bool:
    """pflag's ``strconv.ParseBool``."""
    if value in {"1", "t", "T", "true", "TRUE", "True"}:
        return True
    if value in {"0", "f", "F", "false", "FALSE", "False"}:
        return False
    raise CommandError(
        f'Error: invalid argument "{value}" for "--{name}" flag: '
        f'strconv.ParseBool: parsing "{value}": invalid syntax'
    )


def find_app_root(start: Path) -> Path:
    """The first directory from ``start`` up that holds an ``encore.app`` file."""
    for directory in (start, *start.parents):
        candidate = directory / "encore.app"
        if candidate.is_dir():
            raise CommandError("error: encore.app is a directory, not a file")
        if candidate.is_file():
            return directory
    raise CommandError("error: no encore.app found in directory (or any of the parent directories)")


def read_app_file(path: Path) -> dict[str, object]:
    """``encore.app`` (HuJSON: JSON with comments and trailing commas)."""
    text = re.sub(r"(?m)^\s*//.*$", "", path.read_text(encoding="utf-8"))
    text = re.sub(r",(\s*[}\]])", r"\1", text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"error: parse {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CommandError(f"error: parse {path}: not an object")
    return data


def declared_services(app_root: Path) -> set[str]:
    """Service names declared with ``new Service("name")`` in ``encore.service.ts`` files."""
    names: set[str] = set()
    for path in app_root.rglob("encore.service.ts"):
        if IGNORED_DIRS.isdisjoint(path.relative_to(app_root).parts):
            names.update(SERVICE_DECL.findall(path.read_text(encoding="utf-8")))
    return names


def check_request(opts: Options, app_root: Path) -> Path | None:
    """Validate what the daemon would reject; return the infra config file, if any."""
    if opts.os not in {"linux", "darwin", "windows"}:
        raise CommandError(f"error: unsupported target operating system {opts.os!r}")
    if opts.arch not in {"amd64", "arm64"}:
        raise CommandError(f"error: unsupported target architecture {opts.arch!r}")
    if opts.push:
        raise CommandError("error: this stand-in does not push (no registry is reachable here)")
    known = declared_services(app_root)
    for name in opts.services:
        if name not in known:
            raise CommandError(f'error: service "{name}" not found in app')
    for name in opts.gateways:
        if name != DEFAULT_GATEWAY:
            raise CommandError(f'error: gateway "{name}" not found in app')
    if not opts.config or opts.skip_config:
        return None
    config = Path(opts.config).absolute()
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"error: read infra config {config}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise CommandError(f"error: parse infra config {config}: {exc}") from None
    return config


def build_image(opts: Options, tag: str, app_root: Path, config: Path | None) -> int:
    """``docker build`` the image ``tag`` from the base image and the app's sources."""
    manifest = {
        "image": tag,
        "base": opts.base,
        "services": opts.services,
        "gateways": opts.gateways,
        "os": opts.os,
        "arch": opts.arch,
        "cgo": opts.cgo,
        "telemetry_disabled": os.environ.get("DISABLE_ENCORE_TELEMETRY") == "1",
    }
    with tempfile.TemporaryDirectory(prefix="encore-standin-") as tmp:
        context = Path(tmp)
        shutil.copytree(
            app_root, context / "workspace", ignore=shutil.ignore_patterns(*IGNORED_DIRS)
        )
        (context / "encore").mkdir()
        (context / "encore" / "build.json").write_text(json.dumps(manifest, indent=2) + "\n")
        lines = [f"FROM {opts.base}", "COPY workspace /workspace", "COPY encore /encore"]
        if config is not None:
            shutil.copy2(config, context / "encore" / "infra.config.json")
            lines.append("ENV ENCORE_INFRA_CONFIG_PATH=/encore/infra.config.json")
        lines += ["WORKDIR /workspace", "EXPOSE 8080"]
        (context / "Dockerfile").write_text("\n".join(lines) + "\n")
        print("  Compiling application source code (stand-in: sources copied as they are)")
        print(f"  Building Docker image {tag}", flush=True)
        result = subprocess.run(["docker", "build", "-t", tag, str(context)], check=False)
    if result.returncode == 0:
        print(f"Successfully built {tag}")
    return 1 if result.returncode else 0


def record_call(argv: list[str]) -> None:
    """Append this invocation to ``$ENCORE_STANDIN_LOG`` (tests count calls)."""
    log = os.environ.get("ENCORE_STANDIN_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            version = os.environ.get("STAGECRAFT_VERSION")
            call = {"argv": argv, "cwd": os.getcwd(), "STAGECRAFT_VERSION": version}
            handle.write(json.dumps(call) + "\n")


def main(argv: list[str]) -> int:
    """``encore build docker ...``; anything else is an unknown command."""
    record_call(argv)
    try:
        if argv[:2] not in (["build", "docker"], ["eject", "docker"]):
            raise CommandError(
                f'Error: unknown command "{" ".join(argv[:2])}" for "encore" '
                "(this stand-in implements only `encore build docker`)"
            )
        opts = parse_flags(argv[2:])
        if opts.help:
            sys.stdout.write(USAGE)
            return 0
        if len(opts.args) != 1:
            raise CommandError(f"Error: accepts 1 arg(s), received {len(opts.args)}")
        app_root = find_app_root(Path.cwd())
        lang = read_app_file(app_root / "encore.app").get("lang")
        if "base" not in opts.changed and lang == "typescript":
            opts.base = "node:slim"
        config = check_request(opts, app_root)
        return build_image(opts, opts.args[0], app_root, config)
    except CommandError as exc:
        sys.stderr.write(f"{exc}\n")
        if str(exc).startswith("Error:"):
            sys.stderr.write(USAGE)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
