"""Run the exploration notebook in one language: one source notebook, words from the catalogue.

    python -m se_attention.notebook --lang zh --source notebooks/explore.ipynb \\
        --run-dir results/paper --out results/paper/views/notebooks/explore.zh.ipynb

The source's Markdown cells carry ``metadata.i18n = <key>`` and hold the English text, so the
file reads well when opened by hand; each is replaced by ``notebook.md_<key>`` of the chosen
catalogue. Code cells read their printed and plotted words from the same catalogue through the
SE_LANG environment variable, which this sets for the kernel, along with SE_RUN_DIR.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import atomic
from .i18n import text


def localize(notebook, lang: str):
    """The notebook with every tagged Markdown cell in ``lang``."""
    for cell in notebook.cells:
        key = cell.metadata.get("i18n")
        if cell.cell_type == "markdown" and key:
            cell.source = text(lang, f"notebook.md_{key}", lang=lang)
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def run(source: Path, lang: str, run_dir: Path, out: Path, timeout_s: int = 600) -> None:
    import nbformat
    from nbconvert.preprocessors import ExecutePreprocessor

    notebook = localize(nbformat.read(source, as_version=4), lang)
    # The kernel imports this very package (the code the notebook's stamp hashed), wherever it runs:
    # a relative PYTHONPATH=src would not resolve from the notebook's folder, nor would a stale install.
    package_root = str(Path(__file__).resolve().parents[1])
    env = {"SE_LANG": lang, "SE_RUN_DIR": str(run_dir.resolve()),
           "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        # No timing metadata: re-running on unchanged results leaves the committed notebook unchanged.
        ExecutePreprocessor(timeout=timeout_s, record_timing=False).preprocess(
            notebook, {"metadata": {"path": str(source.parent)}})
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    atomic.write_text(out, nbformat.writes(notebook) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.notebook", description=__doc__.split("\n")[0])
    p.add_argument("--lang", required=True)
    p.add_argument("--source", type=Path, default=Path("notebooks/explore.ipynb"))
    p.add_argument("--run-dir", type=Path, default=Path("results/paper"))
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        run(args.source, args.lang, args.run_dir, args.out)
    except Exception as exc:  # a failing cell, a missing key or file: one line, and the committed file stays
        print(f"error: {args.source} in {args.lang}: {type(exc).__name__}: {str(exc).strip().splitlines()[-1]}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
