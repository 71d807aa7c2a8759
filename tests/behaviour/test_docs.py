"""The documentation holds together: the README stays short, every relative link in README.md and docs/*.md leads
to a file (and heading) that exists, the command-line reference is what the app says, and every benchmark has
its entry on the benchmarks page."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(text: str) -> set[str]:
    """The anchors of a page's headings, as GitHub makes them (lower case, punctuation dropped, spaces to
    hyphens, a repeated heading numbered); lines in code blocks are no headings.

    >>> sorted(anchors("# Alpha matting: `--refine matting`\\n```\\n# not one\\n```\\n## Speed\\n## Speed\\n"))
    ['alpha-matting---refine-matting', 'speed', 'speed-1']
    """
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    found: set[str] = set()
    for title in re.findall(r"^#{1,6} (.+?)\s*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        number, unique = 0, slug
        while unique in found:
            number += 1
            unique = f"{slug}-{number}"
        found.add(unique)
    return found


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` whose file, or heading, does not exist."""
    broken = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(target)
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved.read_text(encoding="utf-8")):
            broken.append(target)
    return broken


def test_the_pages_this_test_walks_exist():
    names = {page.relative_to(REPO).as_posix() for page in PAGES}
    assert {"README.md", "docs/user-guide.md", "docs/cli-reference.md", "docs/architecture.md",
            "docs/benchmarks.md", "docs/scale-out.md", "docs/fine-tuning.md", "docs/development.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page):
    assert LINK.search(page.read_text(encoding="utf-8")), f"{page.name} links nowhere"
    assert broken_links(page) == []


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "there.md").write_text("# Here\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md#here) [gone](missing.md) [no heading](there.md#elsewhere) "
                    "[web](https://example.com) `[code](missing.md)`\n")
    assert broken_links(page) == ["missing.md", "there.md#elsewhere"]


def test_the_readme_is_short_and_links_the_docs():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    linked = {Path(target.partition("#")[0]).name for target in LINK.findall(text)}
    assert {page.name for page in PAGES if page.parent == REPO / "docs"} <= linked


def test_the_cli_reference_is_what_the_app_says():
    done = subprocess.run([sys.executable, "docs/make_cli_reference.py", "--check"], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_cli_reference_check_sees_a_stale_page(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("make_cli_reference", REPO / "docs" / "make_cli_reference.py")
    make_cli_reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_cli_reference)
    stale = tmp_path / "cli-reference.md"
    stale.write_text(make_cli_reference.render().replace("--overwrite", "--clobber"), encoding="utf-8")
    monkeypatch.setattr(make_cli_reference, "PAGE", stale)
    assert make_cli_reference.main(["--check"]) == 1
    monkeypatch.setattr(make_cli_reference, "PAGE", tmp_path / "fresh.md")
    assert make_cli_reference.main([]) == 0 and make_cli_reference.main(["--check"]) == 0
    assert "### `maskcli segment`" in (tmp_path / "fresh.md").read_text(encoding="utf-8")


def test_every_benchmark_has_its_entry():
    page = (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `(\w+)`$", page, flags=re.M))
    modules = {path.stem for path in (REPO / "benchmarks").glob("*.py")} - {"__init__", "common"}
    assert documented == modules
    for name in documented:
        assert f"python -m benchmarks.{name}" in page, name
