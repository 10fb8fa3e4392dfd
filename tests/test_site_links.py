"""hooks/run_results.py: with a repository, a page's file names and function names link to the code."""

import ast
import importlib.util
import re

from conftest import ROOT

spec = importlib.util.spec_from_file_location("run_results_hook", ROOT / "hooks" / "run_results.py")
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)

CONFIG = {"repo_url": "https://github.com/owner/repo/", "config_file_path": str(ROOT / "mkdocs.yml")}


def linked(html: str) -> str:
    return hook.on_page_content(html, page=None, config=CONFIG, files=None)


def test_a_function_named_in_a_caption_links_to_its_line_at_the_built_commit():
    html = linked("<p><em>Drawn by <code>plot_feature_maps</code> in <code>src/se_attention/figures.py</code>.</em></p>")
    target = re.search(r'href="https://github.com/owner/repo/blob/([^/]+)/src/se_attention/figures.py#L(\d+)"', html)
    assert target, html
    line = int(target.group(2))
    source = (ROOT / "src/se_attention/figures.py").read_text(encoding="utf-8").splitlines()
    assert source[line - 1].startswith("def plot_feature_maps(")
    assert target.group(1) == hook.commit(ROOT)
    assert f'href="https://github.com/owner/repo/blob/{target.group(1)}/src/se_attention/figures.py"' in html


def test_unknown_ambiguous_and_already_linked_names_are_left_alone():
    ambiguous = [name for name, count in _definition_counts().items() if count > 1]
    html = "<p><code>no_such_function</code> <a href=\"x\"><code>plot_confusion</code></a></p>"
    html += "".join(f"<code>{name}</code>" for name in ambiguous)
    assert linked(html) == html


def test_without_a_repository_nothing_is_linked():
    html = "<code>plot_feature_maps</code>"
    assert hook.on_page_content(html, None, {**CONFIG, "repo_url": None}, None) == html


def _definition_counts() -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in (ROOT / "src/se_attention").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                counts[node.name] = counts.get(node.name, 0) + 1
    return counts
