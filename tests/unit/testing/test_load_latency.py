"""Latency figures of the load clients: wrk's --latency report, nearest-rank percentiles."""

from __future__ import annotations

import pytest

from stagecraft.testing.load import LoadResult, parse_wrk, parse_wrk_latency, percentile

WRK_REPORT = """\
Running 20s test @ http://10.213.0.2/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.69ms  593.22us   5.95ms   69.74%
    Req/Sec     1.14k    45.43     1.24k    72.73%
  Latency Distribution
     50%  635.91us
     75%    1.72ms
     90%    1.20s
     99%    1.50m
  1254 requests in 20.10s, 3.02MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:     62.39
body-first=fleet web v1
body-last=fleet web v2
"""


def test_parse_wrk_latency_converts_every_unit_to_ms() -> None:
    found = parse_wrk_latency(WRK_REPORT)
    assert [p for p, _ in found] == [50.0, 75.0, 90.0, 99.0]
    assert [ms for _, ms in found] == pytest.approx([0.63591, 1.72, 1200.0, 90_000.0])


def test_parse_wrk_keeps_the_counts_and_adds_the_percentiles() -> None:
    result = parse_wrk(WRK_REPORT)
    assert (result.requests, result.socket_errors, result.non_2xx) == (1254, 3, 4)
    assert result.failures == 7
    assert result.first_bodies == ("fleet web v1",)
    assert result.last_bodies == ("fleet web v2",)
    assert result.percentile_ms(50) == pytest.approx(0.63591)
    assert result.percentile_ms(99) == pytest.approx(90_000.0)
    assert result.percentile_ms(95) is None


def test_a_report_without_latency_has_no_percentiles() -> None:
    plain = WRK_REPORT.replace("  Latency Distribution\n", "")
    plain = "\n".join(line for line in plain.splitlines() if "%  " not in line)
    result = parse_wrk(plain)
    assert result.latency_ms == ()
    assert result.percentile_ms(50) is None
    assert result.requests == 1254


def test_the_latency_block_ends_at_the_first_other_line() -> None:
    text = "  Latency Distribution\n     50%    2.00ms\n  garbage\n     99%    9.00ms\n"
    assert parse_wrk_latency(text) == ((50.0, 2.0),)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 1) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="percentile"):
        percentile(values, 0)


def test_load_result_percentiles_are_in_ms() -> None:
    result = LoadResult(latencies=[0.001, 0.002, 0.003, 0.250])
    assert result.percentile_ms(50) == pytest.approx(2.0)
    assert result.percentile_ms(99) == pytest.approx(250.0)
    assert LoadResult().percentile_ms(50) is None
