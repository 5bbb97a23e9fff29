"""The docs site (``mkdocs.yml``) builds in strict mode without the network.

Strict mode fails the build on any warning, and ``mkdocs.yml``'s ``validation:``
turns a link to a missing page or anchor, a relative link out of ``docs/`` and a
page missing from the navigation into warnings: a broken link fails this test.
The build runs with every socket connection refused, so the site never depends
on web fonts or a plugin that downloads something. The built site must hold
every page, the search index and the diagrams, and load nothing from another host.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS) for p in DOCS.rglob("*.md"))
DIAGRAMS = sorted((DOCS / "diagrams").glob("*.svg"))
SVG = "{http://www.w3.org/2000/svg}"
REPO_LINK = re.compile(
    r"https://github\.com/stagecraft-dev/stagecraft/(blob|tree)/main/([^)\s#\"'>]+)"
)

# mkdocs, run with every network connection refused (its own and its plugins').
OFFLINE_MKDOCS = """
import socket, sys

def refuse(*args, **kwargs):
    raise OSError("the docs build tried to use the network")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

from mkdocs.__main__ import cli

sys.exit(cli())
"""


def url_of(page: Path) -> str:
    """The site URL of a page, relative to the site root (``adr/0001-x/``; ``""`` for the home)."""
    parts = page.with_suffix("").parts
    if parts[-1] == "index":
        parts = parts[:-1]
    return "".join(f"{part}/" for part in parts)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail("mkdocs is not installed: install the dev extra (pip install -e '.[dev]')")
    out = tmp_path_factory.mktemp("docs-site") / "site"
    argv = [sys.executable, "-c", OFFLINE_MKDOCS, "build", "--strict", "--site-dir", str(out)]
    argv += ["--config-file", str(ROOT / "mkdocs.yml")]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"}
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
    assert "WARNING" not in result.stderr, result.stderr
    return out


def test_every_page_is_built_and_in_the_navigation(site: Path) -> None:
    home = (site / "index.html").read_text()
    links = re.findall(r"<a\s[^>]*class=\"md-nav__link[^>]*>", home)
    nav = {href for link in links for href in re.findall(r'href="([^"]*)"', link)}
    assert len(PAGES) > 20 and Path("getting-started.md") in PAGES
    for page in PAGES:
        assert (site / url_of(page) / "index.html").is_file(), f"{page} was not built"
        assert (url_of(page) or ".") in nav, f"{page} is not in the navigation"


def test_the_search_index_covers_every_page_and_works_offline(site: Path) -> None:
    index = json.loads((site / "search" / "search_index.json").read_text())
    locations = {doc["location"].split("#")[0] for doc in index["docs"]}
    assert {url_of(page) for page in PAGES} <= locations
    getting_started = " ".join(
        doc["text"] for doc in index["docs"] if doc["location"].startswith("getting-started/")
    )
    assert "hosts bootstrap" in getting_started and "rollback" in getting_started
    # The search runs in the browser from the site's own files (a web worker and lunr).
    assert list((site / "assets" / "javascripts" / "workers").glob("search.*.js"))


def test_nothing_is_loaded_from_another_host(site: Path) -> None:
    for html in site.rglob("*.html"):
        text = html.read_text()
        assert "fonts.googleapis.com" not in text and "fonts.gstatic.com" not in text, html
        assert not re.search(r'\ssrc="(https?:)?//', text), f"{html}: loads a remote script"
        stylesheets = re.findall(r"<link[^>]*>", text)
        remote = [
            s for s in stylesheets if re.search(r'href="(https?:)?//', s) and "canonical" not in s
        ]
        assert not remote, f"{html}: {remote}"


def test_tables_show_escaped_pipes_as_github_does(site: Path) -> None:
    cli = (site / "cli" / "index.html").read_text()
    assert "completion bash|zsh|fish" in cli and "bash\\|zsh" not in cli


def test_diagrams_are_well_formed_svg_and_published(site: Path) -> None:
    names = {svg.name for svg in DIAGRAMS}
    assert {"dev-topology.svg", "deploy-phases.svg", "zero-downtime-switch.svg"} <= names
    built = "".join(html.read_text() for html in site.rglob("*.html"))
    for svg in DIAGRAMS:
        root = ET.parse(svg).getroot()  # raises on malformed XML
        assert root.tag == f"{SVG}svg" and root.get("viewBox"), svg.name
        assert root.find(f"{SVG}title") is not None, f"{svg.name}: no <title> for screen readers"
        text = svg.read_text()
        assert not re.search(r'href="(https?:)?//', text), f"{svg.name}: loads something remote"
        assert (site / "diagrams" / svg.name).read_bytes() == svg.read_bytes()
        assert f'src="../diagrams/{svg.name}"' in built, f"{svg.name} is on no page"


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_links_into_the_repository_name_files_that_exist(page: Path) -> None:
    """Docs link to files outside docs/ by GitHub URL (blob/ for a file, tree/ for a folder)."""
    for kind, path in REPO_LINK.findall((DOCS / page).read_text()):
        target = ROOT / path.rstrip("/")
        assert target.is_file() if kind == "blob" else target.is_dir(), (
            f"{page}: {kind}/main/{path} does not name a {'file' if kind == 'blob' else 'folder'}"
        )
