"""Merged output rendering: aligned ``name |`` prefixes, colour only on terminals."""

from __future__ import annotations

import io
import threading

from stagecraft.dev.logprefix import LinePrefixer, stream_sink, strip_ansi, wants_color


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_prefixes_are_aligned_to_the_longest_name() -> None:
    prefixer = LinePrefixer(["api", "frontend", "db"], color=False)
    lines = [
        prefixer.format("api", "stdout", "listening on :4000"),
        prefixer.format("frontend", "stderr", "VITE v7 ready"),
        prefixer.format("db", "stdout", ""),
    ]
    assert lines == [
        "api      | listening on :4000",
        "frontend | VITE v7 ready",
        "db       | ",
    ]


def test_plain_output_drops_the_colour_codes_dev_servers_print() -> None:
    prefixer = LinePrefixer(["web"], color=False)
    line = "\x1b[32m  ➜  \x1b[1mLocal\x1b[22m:\x1b[39m   http://localhost:5173/"
    assert prefixer.format("web", "stdout", line) == "web |   ➜  Local:   http://localhost:5173/"


def test_colours_follow_the_order_names_were_given_and_reset_after_the_name() -> None:
    prefixer = LinePrefixer(["api", "web"], color=True)
    assert prefixer.format("api", "stdout", "hi") == "\x1b[36mapi\x1b[0m | hi"
    assert prefixer.format("web", "stdout", "hi") == "\x1b[35mweb\x1b[0m | hi"
    again = LinePrefixer(["api", "web"], color=True)
    assert again.prefix("web") == prefixer.prefix("web")


def test_a_coloured_line_is_reset_so_colour_does_not_bleed_into_the_next() -> None:
    prefixer = LinePrefixer(["api"], color=True)
    assert prefixer.format("api", "stdout", "\x1b[31merror").endswith("\x1b[31merror\x1b[0m")
    assert prefixer.format("api", "stdout", "plain").endswith("| plain")


def test_unknown_names_get_the_next_colour_and_widen_the_column() -> None:
    prefixer = LinePrefixer(["api"], color=False)
    assert prefixer.format("stagecraft", "stdout", "x") == "stagecraft | x"
    assert prefixer.format("api", "stdout", "y") == "api        | y"


def test_strip_ansi_removes_csi_osc_and_short_escapes() -> None:
    text = "\x1b]8;;http://x\x07link\x1b]8;;\x07 \x1b[2K\x1b[1Gdone\x1b=ok"
    assert strip_ansi(text) == "link doneok"


def test_colour_only_for_terminals_and_never_with_no_color_or_dumb_terminals() -> None:
    assert wants_color(FakeTty(), environ={}) is True
    assert wants_color(io.StringIO(), environ={}) is False
    assert wants_color(FakeTty(), environ={"NO_COLOR": "1"}) is False
    assert wants_color(FakeTty(), environ={"TERM": "dumb"}) is False
    assert wants_color(FakeTty(), no_color=True, environ={}) is False


def test_stream_sink_writes_whole_lines_from_many_threads() -> None:
    out = io.StringIO()
    sink = stream_sink(out, LinePrefixer(["a", "bb"], color=False))

    def emit(name: str) -> None:
        for i in range(200):
            sink(name, "stdout", f"line {i}")

    threads = [threading.Thread(target=emit, args=(n,)) for n in ("a", "bb")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 400
    assert all(line.startswith(("a  | line ", "bb | line ")) for line in lines)
