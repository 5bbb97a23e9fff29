"""ANSI colours as HTML: escaped text, SGR as classes, every other escape dropped."""

from __future__ import annotations

from stagecraft.dashboard.ansi import strip, to_html


def test_text_is_escaped_before_anything_else() -> None:
    assert to_html('<script>alert("x")</script> & co') == (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co"
    )


def test_colours_and_attributes_become_classes() -> None:
    assert to_html("\x1b[1;32mok\x1b[0m done") == '<span class="ansi-bold ansi-fg2">ok</span> done'
    assert to_html("\x1b[91;44mx\x1b[39my\x1b[49mz") == (
        '<span class="ansi-fg9 ansi-bg4">x</span><span class="ansi-bg4">y</span>z'
    )
    assert to_html("\x1b[38;5;3mpal\x1b[38;5;200mhigh") == (
        '<span class="ansi-fg3">pal</span><span class="ansi-fg3">high</span>'
    )
    assert to_html("\x1b[38;2;1;2;3mrgb\x1b[m") == "rgb"
    assert to_html("\x1b[4mu\x1b[24mv") == '<span class="ansi-underline">u</span>v'


def test_a_coloured_tag_stays_escaped_inside_its_span() -> None:
    assert to_html("\x1b[31m<img src=x onerror=alert(1)>") == (
        '<span class="ansi-fg1">&lt;img src=x onerror=alert(1)&gt;</span>'
    )


def test_other_sequences_and_control_characters_are_dropped() -> None:
    text = "\x1b]0;title\x07\x1b[2K\x1b[1Gvite \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x08!"
    assert to_html(text) == "vite link!"
    assert strip("\x1b[32m  ➜  Local:\x1b[0m http://localhost:5173/") == (
        "  ➜  Local: http://localhost:5173/"
    )


def test_a_line_reads_as_error_warning_or_info_for_the_level_filter() -> None:
    from stagecraft.dashboard.ansi import level

    assert level("\x1b[31mError\x1b[0m: listen EADDRINUSE :::4000") == "error"
    assert level("Traceback (most recent call last):") == "error"
    assert level('{"level":"error","msg":"db down"}') == "error"
    assert level("level=warn msg=slow query") == "warning"
    assert level("(node:12) DeprecationWarning: Buffer() is deprecated") == "warning"
    assert level("GET /healthz 200 in 3ms") == "info"
    assert level("terrors of the deep") == "info"  # a word, not a substring
