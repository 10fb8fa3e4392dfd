"""MkDocs hook: render one notebook per language with mkdocs-jupyter inside an i18n build.

mkdocs-static-i18n rebuilds the file list late (event priority -100) from plain File copies, so
the NotebookFile wrapper of mkdocs-jupyter is lost and `explore.<lang>.ipynb` is copied as raw
JSON (mkdocs-static-i18n issue #198). Running after it, this hook keeps the current language's
notebook, wraps it again as a NotebookFile and places it where i18n places that language's pages,
then points the language switcher of that page at the other languages' notebooks (i18n, having
taken the notebooks for static files, would send the reader to the home page; the theme's
template context for these pages is not i18n's, so the finished HTML is corrected instead).

It also gives the notebook's headings stable ids, the same in every language: mkdocs-jupyter makes
a heading's id from its ASCII letters only, so Chinese headings got id="" and the table of
contents (slugged differently, "_1", "_2") pointed nowhere. Each Markdown cell of the source
notebook carries its catalogue key (metadata.i18n, see se_attention.notebook); a cell's first
heading takes that key as its id ("load", "channels", ...), later ones "<key>-2", "<key>-3".
"""

import json
import logging
import os
import posixpath
import re
from pathlib import Path

import mkdocs.plugins
from mkdocs.structure.files import File
from mkdocs_jupyter.plugin import NotebookFile

log = logging.getLogger("mkdocs.hooks.i18n_notebooks")
# A heading as mkdocs-jupyter writes it: <hN id="...">text<a class="anchor-link" href="#...">
HEADING = re.compile(r'(<h[1-6] id=")[^"]*(">.*?<a class="anchor-link" href="#)[^"]*(")', re.S)


@mkdocs.plugins.event_priority(-1000)
def on_files(files, config):
    i18n = config.plugins["i18n"]
    language, default = i18n.current_language, i18n.default_language
    # The executed notebooks of the run the site shows (see run_results.py): results/<run>/views/notebooks.
    folder = Path(config["config_file_path"]).resolve().parent / "results" / os.environ.get("SE_RUN", "paper") \
        / "views" / "notebooks"
    for path in sorted(folder.glob("[!.]*.ipynb")):
        files.append(File(path.name, str(folder), config["site_dir"], config["use_directory_urls"]))
    for file in [f for f in files if f.src_uri.endswith(".ipynb")]:
        files.remove(file)
        base, _, locale = file.src_uri[: -len(".ipynb")].rpartition(".")
        if locale != language:
            continue
        notebook = NotebookFile(file, **config)
        notebook.url = _notebook_url(base, language, default)
        notebook.dest_uri = notebook.url + "index.html"
        notebook.abs_dest_path = os.path.normpath(os.path.join(config["site_dir"], notebook.dest_uri))
        files.append(notebook)
    return files


def _notebook_url(base: str, language: str, default: str) -> str:
    return f"{base}/" if language == default else f"{language}/{base}/"


def heading_ids(notebook_path: str) -> list[str]:
    """The ids of the notebook's Markdown headings, in order, from each cell's catalogue key."""
    ids = []
    for cell in json.loads(Path(notebook_path).read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        key = cell.get("metadata", {}).get("i18n") or "section"
        headings = [line for line in source.splitlines() if re.match(r"#{1,6} ", line)]
        ids += [key if n == 1 else f"{key}-{n}" for n in range(1, len(headings) + 1)]
    return ids


def _flat(items):
    for item in items:
        yield item
        yield from _flat(item.children)


def on_page_content(html, page, config, files):
    if not isinstance(page.file, NotebookFile):
        return html
    ids = heading_ids(page.file.abs_src_path)
    toc = list(_flat(page.toc.items)) if page.toc else []
    found = HEADING.findall(html)
    if len(found) != len(ids) or len(toc) != len(ids):
        log.warning("%s: %d headings, %d table-of-contents entries, %d Markdown headings in the notebook; "
                    "heading ids left as mkdocs-jupyter made them", page.file.src_uri, len(found), len(toc), len(ids))
        return html
    for item, anchor in zip(toc, ids):
        item.id = anchor
    names = iter(ids)

    def rename(match: re.Match) -> str:
        anchor = next(names)
        return f"{match.group(1)}{anchor}{match.group(2)}{anchor}{match.group(3)}"

    return HEADING.sub(rename, html)


@mkdocs.plugins.event_priority(-1000)
def on_post_page(output, page, config):
    """Point the language switcher's links and the head's alternate links of a notebook page at the
    same notebook in each language."""
    if not isinstance(page.file, NotebookFile):
        return output
    i18n = config.plugins["i18n"]
    base = page.file.src_uri[: -len(".ipynb")].rpartition(".")[0]

    def href(language: str) -> str:
        return posixpath.relpath(_notebook_url(base, language, i18n.default_language), page.url) + "/"

    def link(match: re.Match) -> str:
        return f'<a href="{href(match.group(2))}"{match.group(1)}hreflang="{match.group(2)}"'

    def alternate(match: re.Match) -> str:  # the head's <link rel="alternate">: it named the previous page
        return f'<link rel="alternate" href="{href(match.group(2))}"{match.group(1)}hreflang="{match.group(2)}"'

    output = re.sub(r'<a href="[^"]*"(\s+)hreflang="([\w-]+)"', link, output)
    return re.sub(r'<link rel="alternate" href="[^"]*"(\s+)hreflang="([\w-]+)"', alternate, output)
