"""MkDocs hook: render one notebook per language with mkdocs-jupyter inside an i18n build.

mkdocs-static-i18n rebuilds the file list late (event priority -100) from plain File copies, so
the NotebookFile wrapper of mkdocs-jupyter is lost and `explore.<lang>.ipynb` is copied as raw
JSON (mkdocs-static-i18n issue #198). Running after it, this hook keeps the current language's
notebook, wraps it again as a NotebookFile and places it where i18n places that language's pages,
then points the language switcher of that page at the other languages' notebooks (i18n, having
taken the notebooks for static files, would send the reader to the home page; the theme's
template context for these pages is not i18n's, so the finished HTML is corrected instead).
"""

import os
import posixpath
import re
from pathlib import Path

import mkdocs.plugins
from mkdocs.structure.files import File
from mkdocs_jupyter.plugin import NotebookFile


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


@mkdocs.plugins.event_priority(-1000)
def on_post_page(output, page, config):
    """Rewrite the language switcher's links of a notebook page to the same notebook in each language."""
    if not isinstance(page.file, NotebookFile):
        return output
    i18n = config.plugins["i18n"]
    base = page.file.src_uri[: -len(".ipynb")].rpartition(".")[0]

    def link(match: re.Match) -> str:
        target = _notebook_url(base, match.group(2), i18n.default_language)
        return f'<a href="{posixpath.relpath(target, page.url)}/"{match.group(1)}hreflang="{match.group(2)}"'

    return re.sub(r'<a href="[^"]*"(\s+)hreflang="([\w-]+)"', link, output)
