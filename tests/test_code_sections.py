"""The code the Concepts page shows is included from src/ by pymdownx.snippets sections: every section a
page names exists in its file, opens once and closes once, and both languages show the same code."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = re.compile(r'^--8<-- "(src/[^":]+):([\w-]+)"$', re.M)


def includes(page: Path) -> list[tuple[str, str]]:
    return INCLUDE.findall(page.read_text(encoding="utf-8"))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_included_section_is_marked_once_in_its_file(lang):
    found = includes(ROOT / "docs" / f"concepts.{lang}.md")
    assert len(found) >= 10, found  # SE, its helpers, the conv block, the probe, ECA, CBAM, spatial
    for path, name in found:
        text = (ROOT / path).read_text(encoding="utf-8")
        start, end = f"# --8<-- [start:{name}]", f"# --8<-- [end:{name}]"
        assert text.count(start) == 1 and text.count(end) == 1, (path, name)
        assert text.index(start) < text.index(end), (path, name)


def test_both_languages_show_the_same_code():
    assert includes(ROOT / "docs" / "concepts.zh.md") == includes(ROOT / "docs" / "concepts.en.md")
