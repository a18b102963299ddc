"""scripts/bench.py's report: medians, ratios against each row's baseline, the last line."""

from __future__ import annotations

import argparse

from bench import Runs, Target, report


def runs_of(name: str, baseline: str, *rps: float) -> Runs:
    runs = Runs(Target(name, f"path {name}", f"http://x/{name}", b"", baseline))
    for value in rps:
        runs.add(
            {
                "requests": int(value),
                "duration_us": 1_000_000,
                "errors": 0,
                "p50_us": 1000,
                "p99_us": 2000,
            }
        )
    return runs


ARGS = argparse.Namespace(connections=16, seconds=10.0, rounds=3)


def test_last_line_gives_hot_and_cold_from_the_medians() -> None:
    rows = [
        runs_of("A", "A", 1000, 8000, 9000),  # median 8000
        runs_of("B", "A", 4000, 100, 4100),  # median 4000
        runs_of("D", "A", 2000, 1700, 1600),  # median 1700
    ]
    text = report(rows, [29 * 1024, 34 * 1024], None, ARGS)
    assert text.splitlines()[-1] == "ratios: hot=0.50 cold=0.21"
    b_row = next(line for line in text.splitlines() if line.startswith("B "))
    assert b_row.split()[-5:-3] == ["4000", "0.50"]
    assert "reproxy cache entries" not in text


def test_cache_line_gives_the_memory_per_entry() -> None:
    rows = [runs_of("A", "A", 100), runs_of("B", "A", 50), runs_of("D", "A", 25)]
    text = report(rows, [1024], (34 * 1024, 42 * 1024, 8192), ARGS)
    lines = text.splitlines()
    assert lines[-1] == "ratios: hot=0.50 cold=0.25"
    assert lines[-2] == (
        "Front Perlbal RSS with 8192 more reproxy cache entries: 34 -> 42 MB (+8.0 MB, 1.0 KB each)"
    )


def test_the_media_tier_is_compared_with_the_same_requests_to_gunicorn() -> None:
    rows = [runs_of(n, "A", rps) for n, rps in [("A", 100), ("B", 50), ("D", 30), ("E", 20)]]
    lines = report(rows, [1024], None, ARGS).splitlines()
    assert "The media tier: D is 1.50 times E (the same requests to gunicorn)" in lines
    assert lines[-1] == "ratios: hot=0.50 cold=0.30"
