"""Find the ``stagecraft.yml`` to use, like git finds its repository.

An explicit ``--config`` path (a file, or a directory holding one) wins; else
the nearest ``stagecraft.yml`` in the current directory or a parent. Only the
standard library and the error types are imported, so shell completion can
find the config without paying for validation.

Example::

    from stagecraft.config.locate import find_config

    path = find_config()                  # ./stagecraft.yml, ../stagecraft.yml, ...
    path = find_config(Path("deploy/"))   # deploy/stagecraft.yml
"""

from __future__ import annotations

from pathlib import Path

from stagecraft.config.document import display_path
from stagecraft.errors import ConfigNotFound

CONFIG_FILENAMES = ("stagecraft.yml", "stagecraft.yaml")
INIT_HINT = "run `stagecraft init` to create one, or pass --config PATH"


def find_config(explicit: Path | None = None, cwd: Path | None = None) -> Path:
    """The ``stagecraft.yml`` to use: ``explicit``, else the nearest in ``cwd`` or a parent."""
    start = (cwd or Path.cwd()).absolute()
    if explicit is not None:
        path = explicit if explicit.is_absolute() else start / explicit
        if path.is_dir():
            for name in CONFIG_FILENAMES:
                if (path / name).is_file():
                    return path / name
            raise ConfigNotFound(
                f"no stagecraft.yml in {display_path(path, start)}", hint=INIT_HINT
            )
        if not path.is_file():
            raise ConfigNotFound(
                f"config file {display_path(path, start)} not found", hint=INIT_HINT
            )
        return path
    for directory in (start, *start.parents):
        for name in CONFIG_FILENAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    raise ConfigNotFound(f"no stagecraft.yml in {start} or any parent directory", hint=INIT_HINT)
