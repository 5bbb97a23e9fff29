"""The dev dashboard in headless Chromium, on examples/quickstart under `stagecraft dev`.

One dev session serves every test of this module, in order: every process and
the infra listed as ready; an API log line in the log view within 2 s; the
restart button gives the API a new pid (restarting, then ready); a dev server
that crashes on purpose shows as crashed with its last lines. The page is
reached as a user would: https://stagecraft.quickstart.localhost through the
dev proxy (Chromium accepts exactly the certificate the proxy serves, which is
also verified here against the local CA).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser.chromium import chromium_paths, start_browser, wait_for
from tests.e2e.test_dev import Project, Session, https, quickstart, start_dev, tls  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DASHBOARD = "stagecraft.quickstart.localhost"
URL = f"https://{DASHBOARD}/"
CRASH_MARKER = "crashing on purpose for the dashboard test"
# The API of the test's copy crashes on request, printing two lines first (as a bug would).
CRASH_ROUTE = (
    '  if (pathname === "/__crash") {\n'
    f'    console.log("about to fail: {CRASH_MARKER}");\n'
    '    console.error("Error: simulated fatal error");\n'
    "    process.exit(3);\n"
    "  }\n"
)


@pytest.fixture(scope="module")
def dev(quickstart: Project) -> Iterator[Session]:  # noqa: F811
    if chromium_paths() is None:
        pytest.skip("chromium and chromedriver are not installed (scripts/setup.sh installs them)")
    server = quickstart.dir / "api" / "server.js"
    text = server.read_text()
    anchor = '  if (pathname === "/healthz") {\n'
    assert anchor in text
    server.write_text(text.replace(anchor, CRASH_ROUTE + anchor))
    session = start_dev(quickstart)
    try:
        wait_for(
            lambda: "ready in" in session.out() or session.proc.poll() is not None,
            180,
            "dev to be ready",
            poll=0.2,
        )
        assert session.proc.poll() is None, f"dev exited:\n{session.out()}\n{session.err()}"
        yield session
    finally:
        if session.proc.poll() is None:
            session.proc.send_signal(signal.SIGINT)
            try:
                session.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                session.proc.kill()
        server.write_text(text)


def spki_hash(project: Project) -> str:
    """The base64 SHA-256 of the public key the proxy serves for the dashboard (verified)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from cryptography.x509 import load_der_x509_certificate

    with tls(project, DASHBOARD) as sock:  # verified against the dev CA: no -k
        der = sock.getpeercert(binary_form=True)
    assert der is not None
    key = load_der_x509_certificate(der).public_key()
    spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def page(dev: Session, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    extra = (f"--ignore-certificate-errors-spki-list={spki_hash(dev.project)}",)
    driver = start_browser(tmp_path_factory.mktemp("chromium"), extra)
    try:
        driver.get(URL)
        yield driver
    finally:
        driver.quit()


def rows(driver: Any) -> dict[str, dict[str, str]]:
    """name -> state and pid, as the services table shows them now.

    Read in one script: the table is replaced as states change, so elements found
    one call earlier may be gone (stale) by the next.
    """
    found: dict[str, dict[str, str]] = driver.execute_script(
        "const found = {};"
        "for (const row of document.querySelectorAll('#service-table tbody tr[data-name]'))"
        "  found[row.dataset.name] = {state: row.dataset.state, pid: row.dataset.pid};"
        "return found;"
    )
    return found


def log_text(driver: Any) -> str:
    return str(driver.find_element("id", "log-view").text)


def test_the_dashboard_is_in_the_summary_and_served_through_the_proxy(dev: Session) -> None:
    assert f"dashboard: https://{DASHBOARD}" in dev.out()
    status, headers, body = https(dev.project, DASHBOARD, "/")
    assert status == 200 and b"quickstart" in body
    assert "script-src 'self'" in headers["content-security-policy"]
    assert b"quickstart-dev" not in body  # the database password never shows


def test_every_service_is_listed_ready(page: Any, screenshot: Callable[[Any, str], Path]) -> None:
    expected = {"postgres", "proxy", "backend", "frontend"}
    found = wait_for(
        lambda: (
            (r := rows(page)) and all(r.get(n, {}).get("state") == "ready" for n in expected) and r
        ),
        30,
        "every service ready",
    )
    assert set(found) == expected
    assert "quickstart-dev" not in page.page_source
    screenshot(page, "dev-dashboard")


def test_an_api_log_line_shows_within_two_seconds(page: Any) -> None:
    wait_for(lambda: page.find_element("id", "log-status").text == "live", 10, "the stream")
    path = f"//[log-{time.time_ns()}"  # the API logs `GET <path> failed: Invalid URL`
    conn = http.client.HTTPConnection("127.0.0.1", 4000, timeout=5)
    sent = time.monotonic()
    conn.request("GET", path)
    assert conn.getresponse().status == 500
    conn.close()
    wait_for(lambda: f"{path} failed" in log_text(page), 2.0, "the API's line", poll=0.05)
    assert time.monotonic() - sent <= 2.5
    # the service filter and the text search narrow the view
    from selenium.webdriver.support.ui import Select

    Select(page.find_element("id", "log-service")).select_by_value("frontend")
    assert f"{path} failed" not in log_text(page)
    Select(page.find_element("id", "log-service")).select_by_value("backend")
    page.find_element("id", "log-search").send_keys("no-such-text-anywhere")
    assert f"{path} failed" not in log_text(page)
    page.find_element("id", "log-search").clear()
    page.find_element("id", "log-search").send_keys(path[2:])
    assert f"{path} failed" in log_text(page)
    page.find_element("id", "log-search").clear()  # the next tests see every line again
    Select(page.find_element("id", "log-service")).select_by_value("")
    # the level filter: the API's failure is an error; Vite's "ready in" line is not
    everything = log_text(page)
    Select(page.find_element("id", "log-level")).select_by_value("error")
    errors = log_text(page)
    Select(page.find_element("id", "log-level")).select_by_value("info")
    assert f"{path} failed" in errors
    assert "ready in" in everything and "ready in" not in errors


def test_the_restart_button_gives_the_api_a_new_pid(
    page: Any, dev: Session, screenshot: Callable[[Any, str], Path]
) -> None:
    before = rows(page)["backend"]["pid"]
    assert before
    # Every state the backend's row shows, as the page changes it (a restart can take <1 s).
    page.execute_script(
        "window.backendStates = [];"
        "new MutationObserver(() => {"
        "  const row = document.querySelector('#service-table tr[data-name=backend]');"
        "  const state = row && row.dataset.state;"
        "  const seen = window.backendStates;"
        "  if (state && seen[seen.length - 1] !== state) seen.push(state);"
        "}).observe(document.getElementById('services'),"
        " {subtree: true, childList: true, attributes: true});"
    )

    def click() -> bool:
        page.find_element("css selector", 'button.restart[data-name="backend"]').click()
        return True

    wait_for(click, 10, "the restart button")

    def restarted() -> bool:
        state = rows(page).get("backend", {})
        return state.get("state") == "ready" and state.get("pid") not in ("", before)

    wait_for(restarted, 30, "the backend to be ready with a new pid", poll=0.05)
    states = page.execute_script("return window.backendStates")
    # restarting (or, on a loaded machine, already starting again), then ready
    assert states[-1] == "ready", states
    assert {"restarting", "starting"} & set(states[:-1]), states
    assert "restarting on request" in log_text(page)
    status, _, _ = https(dev.project, "api.quickstart.localhost", "/healthz")
    assert status == 200
    screenshot(page, "dev-dashboard-restarted")


def test_a_crashing_dev_server_shows_crashed_with_its_last_lines(
    page: Any, dev: Session, screenshot: Callable[[Any, str], Path]
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", 4000, timeout=5)
    with pytest.raises((http.client.HTTPException, OSError)):
        conn.request("GET", "/__crash")
        conn.getresponse()
    conn.close()
    wait_for(
        lambda: page.find_element("css selector", 'tr.crash[data-crashed="backend"]'),
        10,
        "the crash panel",
    )
    assert wait_for(lambda: rows(page)["backend"]["state"] == "crashed", 10, "the crashed state")
    text = wait_for(
        lambda: page.find_element("css selector", 'tr.crash[data-crashed="backend"]').text,
        10,
        "the crash panel's text",
    )
    assert CRASH_MARKER in text and "Error: simulated fatal error" in text
    assert "exited with code 3" in text
    screenshot(page, "dev-dashboard-crashed")
    assert dev.proc.poll() is None  # the session goes on
