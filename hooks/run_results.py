"""MkDocs hook: build the site from what a run wrote, so `mkdocs build` and `mkdocs serve` just work.

docs/ holds only hand-written pages. The numbers, figures and executed notebooks come from
results/<run>/ (SE_RUN chooses the run; `paper`, the committed one, by default), and KaTeX's
stylesheet and fonts from node_modules/ (`npm ci`; hooks/maths.py typesets the equations), so that the
site asks no other host. Nothing is copied into docs/:

* the generated tables are included by pymdownx.snippets from results/<run>/ ("tables/<lang>/x.md"), and
  code from the repository itself ("src/se_attention/se.py:se_block", a section between
  `# --8<-- [start:se_block]` and `# --8<-- [end:se_block]`), so a page shows the code that ran;
* figures and diagrams become files at generated/figures/<lang>/x.png and x.svg and KaTeX's CSS and fonts at assets/katex/; the
  executed notebooks are added by the i18n_notebooks hook, after i18n has sorted the pages (i18n
  only takes pages from docs/), from the folder ``notebooks_dir`` names;
* `mkdocs serve` watches results/<run>/ and src/, so a redrawn figure or a rewritten table shows at once.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import subprocess
from pathlib import Path

import mkdocs.plugins
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

# KaTeX's stylesheet and its woff2 fonts (every browser that runs this site reads woff2; the css names
# woff and ttf only as fallbacks that are never asked for). The browser loads a font only where an
# equation uses it.
KATEX = ("node_modules/katex/dist", ("katex-swap.min.css", "fonts/*.woff2"))


def _root(config) -> Path:
    return Path(config["config_file_path"]).resolve().parent


def run_dir(config) -> Path:
    run = os.environ.get("SE_RUN", "paper")
    path = _root(config) / "results" / run
    for part in ("tables", "views/figures", "views/notebooks"):
        if not (path / part).is_dir():
            raise PluginError(f"{path / part}: missing; SE_RUN={run} names a run whose figures, tables and "
                              "notebooks the workflow has not written (snakemake --cores 4 writes them)")
    return path


def on_config(config):
    snippets = config["mdx_configs"].setdefault("pymdownx.snippets", {})
    # results/<run> first: "tables/<lang>/<name>.md"; then the repository: "src/se_attention/<file>.py:<section>".
    snippets["base_path"] = [str(run_dir(config)), str(_root(config))]
    snippets.setdefault("dedent_subsections", True)  # a section inside a function reads from column 0
    return config


@mkdocs.plugins.event_priority(50)  # before i18n (-100) and the notebook hook (-1000) sort the files
def on_files(files, config):
    run, root = run_dir(config), _root(config)
    # Not the .<name>.<random>.part.png files a killed write leaves (se_attention.atomic).
    found = [(f"generated/figures/{p.relative_to(run / 'views' / 'figures').as_posix()}", p)
             for p in sorted((run / "views" / "figures").rglob("*")) if p.suffix in (".png", ".svg")
             and not p.name.startswith(".")]
    base, patterns = KATEX
    katex = root / base
    if not (katex / patterns[0]).is_file():
        raise PluginError(f"{katex / patterns[0]}: missing; run `npm ci` in the repository (the site serves "
                          "its own KaTeX stylesheet and fonts)")
    for pattern in patterns:
        found += [(f"assets/katex/{p.relative_to(katex).as_posix()}", p) for p in sorted(katex.glob(pattern))]
    for src_uri, path in found:
        files.append(File.generated(config, src_uri, abs_src_path=str(path)))
    return files


def notebooks_dir(config) -> Path:
    return run_dir(config) / "views" / "notebooks"


def on_serve(server, config, builder):
    server.watch(str(run_dir(config)))
    server.watch(str(_root(config) / "src"))  # code the pages include
    return server


# A file of the repository named in a page's prose (`src/se_attention/figures.py`): inline code only (a code block's
# <code> holds highlighted spans), and not one that is a link's text already.
REPO_FILE = re.compile(r'(?<!">)<code>((?:src|rules|config|hooks|notebooks|tests)/[\w./-]*)</code>')
# A function or class of the package named in prose (`plot_feature_maps`), as a caption names the code that drew it.
CODE_NAME = re.compile(r'(?<!">)<code>([A-Za-z_]\w*)</code>')
PACKAGE = "src/se_attention"


@functools.cache
def definitions(root: Path) -> dict[str, tuple[str, int]]:
    """Top-level functions and classes of the package defined exactly once: name -> (file, line)."""
    found: dict[str, list[tuple[str, int]]] = {}
    for path in sorted((root / PACKAGE).glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                found.setdefault(node.name, []).append((path.relative_to(root).as_posix(), node.lineno))
    return {name: places[0] for name, places in found.items() if len(places) == 1}


@functools.cache
def commit(root: Path) -> str:
    """The commit the site is built from: a line number is right only in the code of that commit."""
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "HEAD"


def on_page_content(html, page, config, files):
    # With a repository (repo_url, set by CI), each file a page names links to it, and each function or class
    # to its line, so a reader goes from a figure's caption or a code section to the code itself.
    repo = (config.get("repo_url") or "").rstrip("/")
    if not repo:
        return html
    root = _root(config)
    ref, defined = commit(root), definitions(root)

    def link_file(match):
        path = match.group(1)
        kind = "tree" if (root / path).is_dir() else "blob" if (root / path).is_file() else None
        return f'<a href="{repo}/{kind}/{ref}/{path.rstrip("/")}">{match.group(0)}</a>' if kind else match.group(0)

    def link_name(match):
        if match.group(1) not in defined:
            return match.group(0)
        path, line = defined[match.group(1)]
        return f'<a href="{repo}/blob/{ref}/{path}#L{line}">{match.group(0)}</a>'

    return CODE_NAME.sub(link_name, REPO_FILE.sub(link_file, html))


def on_post_page(output, page, config):
    # The repository link in the header (repo_url) stays a plain link: Material's "source" component
    # would ask api.github.com for stars and forks on every first visit, a request to another host
    # that the site otherwise never makes (and that hangs where GitHub is slow or blocked).
    return output.replace('class="md-source" data-md-component="source"', 'class="md-source"')
