"""mkdocs hook: links from a page to the project's files outside docs/
(``../refcnn/functional/conv.py``, ``../reports/bench.md``) work on GitHub as they are; in the
site they would point outside it. This hook copies each linked file that exists into the site
under ``source/`` (a Markdown file becomes a page there) and rewrites the links to it, so the
strict build still fails on a link to a file that does not exist: such a link is left alone and
mkdocs warns."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

LINK = re.compile(r"\]\(([^)#\s:]+)((?:#[^)\s]*)?)\)")  # relative links only: no scheme
SOURCE = "source"


def _outside_file(real_dir: Path, target: str, docs: Path) -> Path | None:
    """The file a relative link from ``real_dir`` names, when it exists in the repository
    outside docs/; None otherwise."""
    path = (real_dir / target).resolve()
    if path.is_relative_to(docs) or not path.is_relative_to(docs.parent) or not path.is_file():
        return None
    return path


def on_files(files: Files, config: Any) -> Files:
    docs = Path(config.docs_dir).resolve()
    pending = sorted(docs.rglob("*.md"))
    while pending:
        page = pending.pop()
        for target, _anchor in LINK.findall(page.read_text(encoding="utf-8")):
            path = _outside_file(page.parent, target, docs)
            if path is None:
                continue
            uri = f"{SOURCE}/{path.relative_to(docs.parent).as_posix()}"
            if files.get_file_from_path(uri) is None:
                files.append(File.generated(config, uri, abs_src_path=str(path)))
                if path.suffix == ".md":
                    pending.append(path)  # its own links need copies too
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    docs = Path(config.docs_dir).resolve()
    real_dir = Path(page.file.abs_src_path).resolve().parent  # where the file really is
    site_dir = (docs / page.file.src_uri).parent  # where it sits among the pages

    def rewrite(match: re.Match[str]) -> str:
        target = (real_dir / match[1]).resolve()
        if target.is_relative_to(docs):
            destination = target
        else:
            outside = _outside_file(real_dir, match[1], docs)
            if outside is None:
                return match[0]  # mkdocs reports it
            destination = docs / SOURCE / outside.relative_to(docs.parent)
        return f"]({Path(os.path.relpath(destination, site_dir)).as_posix()}{match[2]})"

    return LINK.sub(rewrite, markdown)
