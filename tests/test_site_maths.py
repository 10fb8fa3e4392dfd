"""hooks/maths.py: equations become KaTeX markup when the site is built; a TeX mistake stops the build."""

import importlib.util
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("maths_hook", ROOT / "hooks" / "maths.py")
maths = importlib.util.module_from_spec(spec)
spec.loader.exec_module(maths)

if not (shutil.which("node") and (ROOT / "node_modules" / "katex").is_dir()):
    if os.environ.get("CI"):
        pytest.fail("node or node_modules/katex missing; .ci/run runs `npm ci`", pytrace=False)
    pytest.skip("needs Node.js and `npm ci` (KaTeX)", allow_module_level=True)

CONFIG = {"config_file_path": str(ROOT / "mkdocs.yml")}
PAGE = """<html><head><title>t</title></head><body><article>
<p>inline <span class="arithmatex">\\( a &lt; b \\)</span></p>
<div class="arithmatex">\\[
z_c = \\frac{1}{HW} \\sum_{i} X_{c,i}
\\]</div></article></body></html>"""


def page(dest_uri: str):
    return SimpleNamespace(file=SimpleNamespace(dest_uri=dest_uri, src_uri="concepts.en.md"))


def test_equations_become_katex_and_the_page_links_its_stylesheet():
    out = maths.on_post_page(PAGE, page("en/concepts/index.html"), CONFIG)
    assert out.count('class="katex"') == 2 and out.count('class="katex-display"') == 1
    assert "\\(" not in out and "\\[" not in out  # no TeX left for a browser script
    assert "<mo>&lt;</mo>" in out  # the HTML-escaped TeX was unescaped before KaTeX read it
    assert '<link rel="stylesheet" href="../../assets/katex/katex-swap.min.css">' in out


def test_a_page_without_equations_is_left_alone():
    html = "<html><head></head><body><p>no maths, $5 and \\frac in code</p></body></html>"
    assert maths.on_post_page(html, page("index.html"), CONFIG) == html


def test_a_tex_mistake_fails_the_build():
    broken = PAGE.replace("\\frac{1}{HW}", "\\frac{1}{HW")
    with pytest.raises(PluginError, match=r"(?s)concepts\.en\.md:.*parse error.*in: z_c = \\frac\{1\}\{HW"):
        maths.on_post_page(broken, page("concepts/index.html"), CONFIG)
