"""The README and the guides: every link between them, and to files of the repository, resolves."""

import re

import pytest
from expect import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_resolves(page):
    text = page.read_text()
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address: not checked offline
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links to {target}, which is missing"
        if anchor and linked.suffix == ".md":
            headings = {_anchor(h) for h in re.findall(r"^#+ (.+)$", linked.read_text(), re.MULTILINE)}
            assert anchor in headings, f"{page.name} links to {target}: no such heading"


def test_every_guide_is_in_the_readmes_table():
    readme = (ROOT / "README.md").read_text()
    for guide in (ROOT / "docs").glob("*.md"):
        assert f"](docs/{guide.name})" in readme, f"docs/{guide.name} is not linked from the README"
