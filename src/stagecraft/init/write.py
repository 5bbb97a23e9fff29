"""Where ``init`` writes, and writing without ever clobbering a file by accident."""

from __future__ import annotations

from pathlib import Path

from stagecraft.errors import UsageError
from stagecraft.files import atomic_write_text

CONFIG_NAMES = ("stagecraft.yml", "stagecraft.yaml")


class ConfigExistsError(UsageError):
    """The target ``stagecraft.yml`` exists and ``--force`` was not given."""

    def __init__(self, shown: str) -> None:
        super().__init__(
            f"{shown} already exists; not overwriting it",
            hint="pass --force to replace it, or --config PATH to write somewhere else",
        )


def output_path(explicit: Path | None, cwd: Path | None = None) -> Path:
    """The file to write: ``explicit``, else the existing config in ``cwd``, else stagecraft.yml.

    An ``explicit`` directory means the config file inside it, as for the loader.
    """
    base = (cwd or Path.cwd()).resolve()
    if explicit is not None:
        path = explicit if explicit.is_absolute() else base / explicit
        if path.is_dir():
            return output_path(None, cwd=path)
        return path.parent.resolve() / path.name
    for name in CONFIG_NAMES:
        if (base / name).exists():
            return base / name
    return base / CONFIG_NAMES[0]


def write_config(path: Path, text: str, *, force: bool = False) -> None:
    """Write ``text`` to ``path`` atomically; an existing file needs ``force``.

    Raises :class:`ConfigExistsError` (exit code 2) when ``path`` exists and
    ``force`` is false; the file is then left untouched.
    """
    if path.exists() and not force:
        raise ConfigExistsError(str(path))
    if not path.parent.is_dir():
        raise UsageError(
            f"cannot write {path}: directory {path.parent} does not exist",
            hint="create the directory first, or pass another --config PATH",
        )
    atomic_write_text(path, text)
