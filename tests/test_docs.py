"""The documents that code comments cite exist, with the sections they name, and the links
between them resolve."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
CITED = re.compile(r"(DESIGN_NOTES|METRICS)\.md`*((?:,? (?:and )?\"[^\"]+\")*)")


def _headings(path: Path) -> list[str]:
    return [line.lstrip("#").strip() for line in path.read_text().splitlines()
            if line.startswith("#")]


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_cited_documents_and_sections_exist():
    citations = 0
    for source in [*REPO.glob("sar_colorizer/**/*.py"), *REPO.glob("tests/**/*.py")]:
        for match in CITED.finditer(source.read_text()):
            document = DOCS / f"{match.group(1)}.md"
            assert document.is_file(), f"{source} cites {document}"
            headings = _headings(document)
            for section in re.findall(r"\"([^\"]+)\"", match.group(2)):
                assert any(h.startswith(section) for h in headings), (source, section)
            citations += 1
    assert citations >= 5


def test_links_between_the_documents_resolve():
    for document in DOCS.glob("*.md"):
        for target, anchor in re.findall(r"\]\(([\w./-]*\.md)?#?([\w-]*)\)", document.read_text()):
            linked = (document.parent / target) if target else document
            assert linked.is_file(), (document, target)
            if anchor and linked.parent == DOCS:
                assert anchor in {_anchor(h) for h in _headings(linked)}, (document, anchor)
