"""The generated parts of docs/tutorial.md and docs/tolerances.md are what a fresh run gives.

docs/generate.py writes them (real ``python -m refcnn check`` runs, tables computed from the
committed baseline report); this is its ``--check``, so that a change to the code, the oracle
or the baseline that is not followed by ``python docs/generate.py`` fails here. Nothing is
written to the pages.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_generate() -> ModuleType:
    name = "refcnn_docs_generate"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "generate.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # registered first: its dataclasses look themselves up there
        spec.loader.exec_module(module)
    return sys.modules[name]


generate = _load_generate()
PAGES = sorted({part.page for part in generate.PARTS})


@pytest.fixture(scope="module")
def fresh() -> tuple[dict[str, dict[str, str]], list[str]]:
    """Every part rendered anew (the two check runs take a few seconds), and broken claims."""
    rendered: tuple[dict[str, dict[str, str]], list[str]] = generate.render_all()
    return rendered


def _text(page: str) -> str:
    return (ROOT / page).read_text(encoding="utf-8")


@pytest.mark.parametrize("page", PAGES)
def test_page_is_up_to_date(page: str, fresh: Any) -> None:
    parts, broken = fresh
    problems = [m for m in broken if m.startswith(page)]
    problems += generate.problems(page, _text(page), parts[page])
    assert not problems, "\n".join(problems) + "\n\nRegenerate with: python docs/generate.py"


def _edited(text: str, span: tuple[int, int], edit: Any) -> str:
    start, end = span
    return text[:start] + edit(text[start:end]) + text[end:]


def _change_a_number(content: str) -> str:
    """A number other than a duration changed by one: '224 samples' -> '225 samples'."""
    for match in re.finditer(r"\d+", content):
        after = content[match.end() : match.end() + 2]
        if after != " s" and content[match.end() : match.end() + 1] != ".":
            digits = str(int(match.group()) + 1)
            return content[: match.start()] + digits + content[match.end() :]
    raise AssertionError("no number to change")


@pytest.mark.parametrize("page", PAGES)
def test_an_edited_part_is_stale(page: str, fresh: Any) -> None:
    parts, _ = fresh
    text = _text(page)
    for name, span in generate.split(text, page).items():
        for how, edit in [
            ("a line added", lambda c: c + "an edit by hand\n"),
            ("a number changed", _change_a_number),
        ]:
            if how == "a number changed" and not re.search(r"\d", text[span[0] : span[1]]):
                continue
            problems = generate.problems(page, _edited(text, span, edit), parts[page])
            assert any(repr(name) in p and "stale" in p for p in problems), (
                f"{page}: {how} in part {name!r} went unnoticed"
            )


def test_timings_alone_are_not_stale(fresh: Any) -> None:
    parts, _ = fresh
    page = "docs/tutorial.md"
    text = _text(page)
    slower = re.sub(r"\d+\.\d s\b", "99.9 s", text)
    assert slower != text
    assert generate.problems(page, slower, parts[page]) == []


def test_a_missing_part_is_reported(fresh: Any) -> None:
    parts, _ = fresh
    page = "docs/tolerances.md"
    text = _text(page).replace("<!-- generated: baseline-worst -->", "<!-- baseline-worst -->", 1)
    problems = generate.problems(page, text, parts[page])
    assert any("no part 'baseline-worst'" in p for p in problems)
