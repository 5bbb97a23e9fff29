"""The two dashboards as Starlette applications: pages, htmx partials, SSE streams, actions.

:func:`env_app` serves an :class:`~stagecraft.dashboard.envboard.EnvBoard`,
:func:`dev_app` a :class:`~stagecraft.dashboard.devboard.DevBoard`. Both are
wrapped in :class:`~stagecraft.dashboard.security.GuardMiddleware` (Host,
token, Origin and CSRF checks). Pages are Jinja2 templates with autoescaping
(``templates/``); the front end is htmx plus a small script (``static/``), no
build step. Reads happen in a worker thread so a slow host never blocks the
event loop.

Example::

    guard = Guard.for_loopback(port, token=new_token())
    app = env_app(EnvBoard(EnvSources.for_environment(loaded, "production")), guard)
    Server(app, sock).start()
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import anyio
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stagecraft.dashboard.ansi import level, to_html
from stagecraft.dashboard.security import CSRF_HEADER, TOKEN_COOKIE, Guard, GuardMiddleware
from stagecraft.errors import StagecraftError

if TYPE_CHECKING:
    from stagecraft.dashboard.devboard import DevBoard
    from stagecraft.dashboard.envboard import EnvBoard

HEARTBEAT = 15.0
"""Seconds between SSE comments that keep idle streams (and proxies) open."""

_templates = Environment(
    loader=PackageLoader("stagecraft.dashboard", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(name: str, **context: Any) -> str:
    """Render template ``name`` (autoescaped)."""
    return _templates.get_template(name).render(**context)


def _static() -> StaticFiles:
    return StaticFiles(directory=str(resources.files("stagecraft.dashboard") / "static"))


def _headers(guard: Guard) -> dict[str, str]:
    """What htmx sends with every request (``hx-headers``)."""
    headers = {CSRF_HEADER: guard.csrf}
    if guard.token is not None:
        headers["x-stagecraft-token"] = guard.token
    return headers


def _error(exc: StagecraftError, status: int = 400) -> HTMLResponse:
    text = exc.message + (f" ({exc.hint})" if exc.hint else "")
    return HTMLResponse(render("error.html", message=text), status_code=status)


# -- the environment dashboard --------------------------------------------------------------


def env_app(board: EnvBoard, guard: Guard) -> GuardMiddleware:
    """The environment dashboard of ``board`` (see the module docstring)."""

    def context(request: Request) -> dict[str, Any]:
        return {"board": board, "guard": guard, "headers": _headers(guard)}

    async def page(request: Request) -> Response:
        snap = await run_in_threadpool(board.snapshot)
        body = render(
            "env.html",
            snap=snap,
            action=board.action,
            services=board.sources.services,
            interval=board.interval,
            **context(request),
        )
        response = HTMLResponse(body)
        if guard.token is not None:
            response.set_cookie(TOKEN_COOKIE, guard.token, httponly=True, samesite="strict")
        return response

    async def overview(request: Request) -> Response:
        snap = await run_in_threadpool(board.snapshot)
        return HTMLResponse(render("env_overview.html", snap=snap, action=board.action))

    async def action(request: Request) -> Response:
        return HTMLResponse(render("env_action.html", action=board.action))

    async def snapshot(request: Request) -> Response:
        snap = await run_in_threadpool(board.snapshot)
        data = snap.to_json()
        data["action"] = board.action.to_json() if board.action is not None else None
        return JSONResponse(data)

    async def rollback(request: Request) -> Response:
        form = parse_qs((await request.body()).decode(errors="replace"))
        release = form.get("release", [""])[0]
        confirm = form.get("confirm", [""])[0]
        if not release or confirm != release:
            return HTMLResponse(
                render("error.html", message="the confirmation does not name the release"),
                status_code=400,
            )
        try:
            await run_in_threadpool(board.start_rollback, release)
        except StagecraftError as exc:
            return _error(exc, 409)
        return HTMLResponse(render("env_action.html", action=board.action))

    async def logs(request: Request) -> Response:
        service = request.query_params.get("service", "")
        queue: asyncio.Queue[dict[str, str]] = asyncio.Queue(maxsize=2000)
        loop = asyncio.get_running_loop()

        def sink(label: str, stream: str, text: str) -> None:
            item = {"source": label, "stream": stream, "html": to_html(text), "level": level(text)}
            loop.call_soon_threadsafe(_offer, queue, item)

        try:
            stop = await run_in_threadpool(board.follow, service, sink)
        except StagecraftError as exc:
            return _error(exc, 400)

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 3000\n\n"
                idle = 0.0
                while not await request.is_disconnected():
                    try:
                        item = await asyncio.wait_for(queue.get(), 1.0)
                    except TimeoutError:
                        idle += 1.0
                        if idle >= HEARTBEAT:
                            idle = 0.0
                            yield ": keep-alive\n\n"
                        continue
                    idle = 0.0
                    yield f"event: log\ndata: {json.dumps(item)}\n\n"
            finally:
                # Shielded: when the page goes away this generator is being cancelled.
                with anyio.CancelScope(shield=True):
                    await run_in_threadpool(stop)

        return _sse(stream())

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/partials/overview", overview),
            Route("/partials/action", action),
            Route("/api/snapshot", snapshot),
            Route("/actions/rollback", rollback, methods=["POST"]),
            Route("/logs/stream", logs),
            Mount("/static", app=_static()),
        ]
    )
    return GuardMiddleware(app, guard)


def _offer(queue: asyncio.Queue[dict[str, str]], item: dict[str, str]) -> None:
    """Queue a log line; when a slow page lets the queue fill up, drop the line."""
    if not queue.full():
        queue.put_nowait(item)


def _sse(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


# -- the dev dashboard ------------------------------------------------------------------------


def dev_app(board: DevBoard, guard: Guard) -> GuardMiddleware:
    """The dev dashboard of ``board`` (see the module docstring)."""

    async def page(request: Request) -> Response:
        processes = await run_in_threadpool(board.processes)
        migrations = await run_in_threadpool(board.migrations)
        session = board.session
        project = session.plan.project if session is not None else "?"
        return HTMLResponse(
            render(
                "dev.html",
                project=project,
                processes=processes,
                migrations=migrations,
                headers=_headers(guard),
                names=[p["name"] for p in processes],
            )
        )

    async def services(request: Request) -> Response:
        processes = await run_in_threadpool(board.processes)
        return HTMLResponse(render("dev_services.html", processes=processes))

    async def migrations(request: Request) -> Response:
        found = await run_in_threadpool(board.migrations)
        return HTMLResponse(render("dev_migrations.html", migrations=found, message=None))

    async def state(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(board.to_json))

    async def restart(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            await run_in_threadpool(board.restart, name)
        except StagecraftError as exc:
            return _error(exc, 409)
        processes = await run_in_threadpool(board.processes)
        return HTMLResponse(render("dev_services.html", processes=processes))

    async def migrate(request: Request) -> Response:
        try:
            applied = await run_in_threadpool(board.migrate)
        except StagecraftError as exc:
            return _error(exc, 409)
        found = await run_in_threadpool(board.migrations)
        message = f"applied {', '.join(applied)}" if applied else "nothing to apply: up to date"
        return HTMLResponse(render("dev_migrations.html", migrations=found, message=message))

    async def events(request: Request) -> Response:
        since = _int(request.headers.get("last-event-id") or request.query_params.get("since"), 0)

        async def stream() -> AsyncIterator[str]:
            seq = since
            state_seq = board.state_seq
            idle = 0.0
            yield "retry: 2000\n\n"
            while not board.closed.is_set() and not await request.is_disconnected():
                entries = board.lines_since(seq)
                for entry in entries:
                    seq = entry.seq
                    yield f"id: {seq}\nevent: log\ndata: {json.dumps(entry.to_json())}\n\n"
                if board.state_seq != state_seq:
                    state_seq = board.state_seq
                    yield f"event: state\ndata: {state_seq}\n\n"
                if entries:
                    idle = 0.0
                    continue
                got = await run_in_threadpool(board.wait_for_lines, seq, 0.5)
                if not got and board.state_seq == state_seq:
                    idle += 0.5
                    if idle >= HEARTBEAT:
                        idle = 0.0
                        yield ": keep-alive\n\n"

        return _sse(stream())

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/partials/services", services),
            Route("/partials/migrations", migrations),
            Route("/api/state", state),
            Route("/events", events),
            Route("/actions/restart/{name}", restart, methods=["POST"]),
            Route("/actions/migrate", migrate, methods=["POST"]),
            Mount("/static", app=_static()),
        ]
    )
    return GuardMiddleware(app, guard)


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
