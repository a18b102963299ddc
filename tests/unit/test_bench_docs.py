"""docs/bench.md's sections (scripts/benchdoc.py) and make bench-scale's report."""

from __future__ import annotations

import bench_scale
import benchdoc
import pytest
from bench_scale import Step, growth, report

pytestmark = pytest.mark.unit


def test_a_run_replaces_its_own_section_and_keeps_the_others(tmp_path) -> None:
    doc = tmp_path / "bench.md"
    benchdoc.write("bench", "Serving", "ratios: hot=0.60", doc)
    benchdoc.write("bench-scale", "Scale", "scale: store=1.0x", doc)
    benchdoc.write("bench", "Serving", "ratios: hot=0.70", doc)
    text = doc.read_text()
    assert text.startswith(benchdoc.HEADER)
    assert "hot=0.60" not in text and text.count("hot=0.70") == 1
    assert text.count("<!-- bench:bench -->") == 1 and "scale: store=1.0x" in text
    assert "`make bench` (" in text and "CPUs)" in text


def step(files: int, slower: float) -> Step:
    s = Step(files, store_ms=[10.0 * slower] * 10, upload_ms=[50.0] * 10)
    s.tracker_cpu_s, s.tracker_queries = 2.0, 1000
    s.view_rps, s.copy_fps = 400 / slower, 300.0
    s.gallery_ms = s.status_ms = s.ls_top_ms = 10.0
    s.ls_all_s, s.idle_cpu_pct, s.idle_rss_mb = files / 1000, 0.5, 40.0
    return s


def test_growth_is_a_cost_for_times_and_rates_alike() -> None:
    line = growth(step(1000, 1.0), step(100_000, 2.0))
    assert line.startswith("scale: store=2.0x store_p99=2.0x upload=1.0x tracker_cpu=1.0x ")
    assert " first_view=2.0x " in line and " copy=1.0x " in line and " ls_all=100.0x " in line
    assert line.endswith("(files=100x: 1000 -> 100000)")


def test_report_has_a_row_per_step_then_the_growth() -> None:
    lines = report([step(1000, 1.0), step(10_000, 1.0)]).splitlines()
    rows = [line for line in lines if line.strip().split(" ")[0] in ("1000", "10000")]
    assert len(rows) == 2 and lines[-1].startswith("scale: ")


def test_steps_must_grow() -> None:
    assert bench_scale.parse_steps("1000, 10000") == [1000, 10000]
    with pytest.raises(Exception, match="must grow"):
        bench_scale.parse_steps("10000,1000")
