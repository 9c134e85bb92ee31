"""Sections of ``docs/benchmarks.md`` that other benchmarks than ``bench/compare.py`` write.

Each lives between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``; its writer replaces
it (or appends it), and ``compare.py`` keeps every such section when it renders the page.
"""

from __future__ import annotations

import re
from pathlib import Path


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def write_section(path: Path, name: str, text: str) -> None:
    start, end = _markers(name)
    block = f"{start}\n{text.strip()}\n{end}\n"
    page = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    page = (
        pattern.sub(lambda _: block, page)
        if pattern.search(page)
        else page.rstrip() + "\n\n" + block
    )
    path.write_text(page)


def sections(path: Path) -> str:
    """Every marked section of the page as it stands, to carry over a re-render."""
    if not path.exists():
        return ""
    found = re.findall(r"<!-- bench:[\w-]+ -->.*?<!-- /bench:[\w-]+ -->\n?", path.read_text(), re.S)
    return "".join(found)
