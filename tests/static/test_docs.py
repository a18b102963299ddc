"""The docs name only what exists: every relative link, anchor and backticked repo path in
README.md, docs/*.md and src/README.md; and the README stays short and starts with the
two commands."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path, PurePosixPath

import pytest

from . import compose_file as cf

pytestmark = pytest.mark.static

ROOT = cf.ROOT
DOCS = sorted(
    [ROOT / "README.md", ROOT / "src" / "README.md", *(ROOT / "docs").glob("*.md")],
    key=str,
)
README_MAX_LINES = 300
# Fenced blocks of commands, whose words are checked like inline code; code in other
# languages (python, yaml, sql) is not.
COMMAND_FENCES = {"", "sh", "console", "bash"}

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```(\w*)\s*$")
HEADING = re.compile(r"^#{1,6} (.+)$")
# A word that may name a file: letters, digits and ._-/ only (no placeholders like <N>,
# $VAR, {host}, globs or ranges such as mogstored1..3).
PATHLIKE = re.compile(r"^\.?[\w-]+(?:\.[\w-]+)*(?:/[\w-]+(?:\.[\w-]+)*)*/?$")


@cache
def tracked() -> frozenset[str]:
    """Every path git tracks, and every directory above one."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    paths: set[str] = set()
    for name in filter(None, listing.split("\0")):
        if not (ROOT / name).exists():  # deleted in the work tree, not yet committed
            continue
        path = PurePosixPath(name)
        paths.add(str(path))
        paths.update(str(parent) for parent in path.parents if str(parent) != ".")
    return frozenset(paths)


def exists(path: str) -> bool:
    return path.rstrip("/") in tracked()


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    return {slug(m.group(1)) for line in prose(doc) if (m := HEADING.match(line))}


def prose(doc: Path) -> list[str]:
    """The lines outside fenced blocks."""
    return [line for line, fence in lines(doc) if fence is None]


def lines(doc: Path) -> list[tuple[str, str | None]]:
    """Each line with the language of the fenced block it is in (None: outside one)."""
    out: list[tuple[str, str | None]] = []
    fence: str | None = None
    for line in doc.read_text().splitlines():
        match = FENCE.match(line.strip())
        if match and fence is None:
            fence = match.group(1)
        elif line.strip() == "```" and fence is not None:
            fence = None
        else:
            out.append((line, fence))
    return out


def relative(doc: Path) -> str:
    """``doc`` from the repository root (a file elsewhere counts as one at the root)."""
    return doc.relative_to(ROOT).as_posix() if doc.is_relative_to(ROOT) else doc.name


def resolve(doc: Path, target: str) -> str:
    """``target`` (relative to ``doc``) as a path from the repository root."""
    joined = PurePosixPath(relative(doc)).parent / target
    parts: list[str] = []
    for part in joined.parts:
        if part == "..":
            if not parts:
                return "../" + target  # outside the repository
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def links(doc: Path) -> list[str]:
    return [m.group(1) or m.group(2) for line in prose(doc) for m in LINK.finditer(line)]


def words(doc: Path) -> list[str]:
    """The words of inline code and of command blocks."""
    out: list[str] = []
    for line, fence in lines(doc):
        if fence is None:
            spans = CODE_SPAN.findall(line)
        elif fence in COMMAND_FENCES:
            spans = [line.split(" #", 1)[0]]
        else:
            continue
        for span in spans:
            out += [w.strip("\"'(),;:") for w in re.split(r"[\s=]+", span)]
    return out


def repo_paths(doc: Path) -> list[str]:
    """The words that name a path in the repository: they start with one of its top-level
    names and go below it (``scripts/bootstrap.py``, ``docs/``), or name a Markdown file."""
    top = {p for p in tracked() if "/" not in p}
    found = []
    for word in words(doc):
        if not PATHLIKE.match(word):
            continue
        first = word.split("/", 1)[0]
        if word.endswith(".md"):
            found.append(word if exists(word) else resolve(doc, word))
        elif "/" in word and first in top:
            found.append(word)
    return found


def bad_links(doc: Path) -> list[str]:
    """The relative links (and their anchors) of ``doc`` that lead nowhere."""
    bad = []
    for target in links(doc):
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = resolve(doc, path) if path else relative(doc)
        if path and not exists(file):
            bad.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(ROOT / file if path else doc):
            bad.append(f"{target}: no heading #{anchor} in {file}")
    return bad


def missing_paths(doc: Path) -> list[str]:
    return sorted({p for p in repo_paths(doc) if not exists(p)})


@pytest.mark.parametrize("doc", DOCS, ids=relative)
def test_every_relative_link_and_anchor_exists(doc: Path) -> None:
    assert not bad_links(doc), f"{relative(doc)}: {bad_links(doc)}"


@pytest.mark.parametrize("doc", DOCS, ids=relative)
def test_every_backticked_repo_path_exists(doc: Path) -> None:
    assert not missing_paths(doc), (
        f"{relative(doc)} names what does not exist: {missing_paths(doc)}"
    )


def test_the_checks_find_a_missing_file_path_and_anchor(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "# Title\n\nSee `PROTOCOL.md §8.15`, `scripts/nothing.py` and `scripts/bootstrap.py`,\n"
        "[a](docs/nothing.md), [b](docs/production.md#no-such-part), [c](#title), [d](#gone).\n"
        "```sh\n.venv/bin/python scripts/gone.py --wait 1   # scripts/comment.py\n```\n"
        "```python\nopen('scripts/code.py')\n```\n"
    )
    assert missing_paths(doc) == ["PROTOCOL.md", "scripts/gone.py", "scripts/nothing.py"]
    assert bad_links(doc) == [
        "docs/nothing.md: no such file",
        "docs/production.md#no-such-part: no heading #no-such-part in docs/production.md",
        "#gone: no heading #gone in x.md",
    ]


def test_the_readme_is_short_and_starts_with_make_up_and_make_test() -> None:
    text = (ROOT / "README.md").read_text().splitlines()
    assert len(text) < README_MAX_LINES, f"README.md has {len(text)} lines"
    body = [line for line in text[1:] if line.strip()]
    assert body[0] == "```sh", body[:3]
    assert body[1].startswith("make up ") and body[2].startswith("make test "), body[:3]


def test_no_doc_names_the_removed_one_machine_compose_file() -> None:
    for doc in DOCS:
        assert "compose.prod" not in doc.read_text(), relative(doc)
