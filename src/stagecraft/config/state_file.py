"""YAML state files next to ``stagecraft.yml`` (``.stagecraft/infra/``, ``.stagecraft/network/``).

Both are written by a command (``infra up``, ``hosts bootstrap``), read when the
config is loaded, hold no secret, and are meant to be committed: written
atomically with mode 0644 under a header saying what wrote them.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

from stagecraft.errors import StagecraftError


def load_state(path: Path, error: type[StagecraftError], fix: str) -> Any | None:
    """The YAML data of ``path`` (None when there is no file); ``error`` with ``fix`` if bad."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}") from None
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise error(f"{path} is not valid YAML: {exc}", hint=fix) from None


def write_state(path: Path, header: str, data: Any) -> Path:
    """Write ``data`` under ``header`` (comment lines) atomically, mode 0644; ``path``."""
    from ruamel.yaml import YAML

    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    out.write(header)
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    yaml.dump(data, out)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(out.getvalue())
    os.chmod(temp, 0o644)  # no secret in it; meant to be committed
    os.replace(temp, path)
    return path
