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


def _setup_blocks() -> list[str]:
    readme = (REPO / "README.md").read_text()
    setup = readme[readme.index("## Set-up"):readme.index("## Quick start")]
    return re.findall(r"```bash\n(.*?)```", setup, re.S)


def test_readme_installs_users_plainly_and_developers_with_the_test_tools():
    blocks = _setup_blocks()
    user = [b for b in blocks if b.strip().endswith("pip install .")]
    assert len(user) == 1 and "[dev" not in user[0], blocks  # no test tools for users
    developer = [b for b in blocks if "[dev" in b]
    assert len(developer) == 1
    install, test = developer[0].strip().splitlines()  # two commands: install, test
    assert test == "python -m pytest"
    extras = re.search(r'pip install "(\.\[[^\]]+\])"', install)
    assert extras, install
    # CI runs the README's developer install.
    assert f'pip install --quiet "{extras.group(1)}"' in (REPO / ".ci" / "run").read_text()


def test_install_commands_name_the_clone_not_a_package_index():
    """sarcolor is on no package index: ``pip install "sarcolor[dask]"`` fails for a user."""
    index_install = re.compile(r"pip install ['\"]?sarcolor\[")
    sources = [REPO / "README.md", REPO / "data" / "README.md", REPO / "models" / "README.md",
               *REPO.glob("sar_colorizer/**/*.py"), *REPO.glob("examples/*.py"),
               *REPO.glob("bench/*.py")]
    offenders = [str(p) for p in sources if index_install.search(p.read_text())]
    assert offenders == []


def test_quick_start_writes_into_a_folder_git_ignores():
    """The quick start's output and its sidecars leave ``git status`` clean."""
    import shutil
    import subprocess

    import pytest

    readme = (REPO / "README.md").read_text()
    quick = readme[readme.index("## Quick start"):]
    command = re.search(r"```bash\n(sarcolor predict \S+ (\S+))\n", quick)
    assert command, "no quick-start command"
    output = Path(command.group(2))
    assert output.parent != Path("."), "the quick start writes into the clone's root"
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    sidecars = [output, output.with_suffix(".pgw"), output.with_name(output.name + ".aux.xml")]
    ignored = subprocess.run(["git", "check-ignore", *map(str, sidecars)], cwd=REPO,
                             capture_output=True, text=True)
    assert sorted(ignored.stdout.split()) == sorted(map(str, sidecars))
