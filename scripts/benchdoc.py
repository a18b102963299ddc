"""docs/bench.md, the one home of the benchmark figures: one section per benchmark.

Each benchmark (``make bench``, ``make bench-scale``) replaces its own section on every
run, between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``, and leaves the others
alone; a section says when, on how many cores and with which command it was measured.
"""

from __future__ import annotations

import datetime
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from compose_yaml import ROOT

DOC = ROOT / "docs" / "bench.md"
HEADER = """# Benchmark figures

Generated: each section is rewritten by the command it names (`scripts/benchdoc.py`);
do not edit by hand. Everything runs on one machine, load generator included: compare
the rows of a section with each other, not with another machine.
"""


def section(name: str, title: str, body: str, argv: Sequence[str] | None = None) -> str:
    """The section: ``make NAME`` and the script's own command line, ``body`` as it printed."""
    command = shlex.join([Path(sys.executable).name, *(sys.argv if argv is None else argv)])
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"`make {name}` ({when}, {os.cpu_count()} CPUs): `{command}`\n\n"
        f"```\n{body.rstrip()}\n```\n<!-- /bench:{name} -->\n"
    )


def replace_section(text: str, name: str, new: str) -> str:
    """``text`` with section ``name`` replaced by ``new`` (appended if it has none)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        return head + new + ("\n" + tail if tail else "")
    return text.rstrip("\n") + "\n\n" + new


def write(name: str, title: str, body: str, doc: Path = DOC) -> Path:
    """Put ``body`` (a benchmark's report) in its section of ``doc``."""
    text = doc.read_text() if doc.exists() else HEADER
    doc.write_text(replace_section(text, name, section(name, title, body)))
    return doc
