"""Build (or serve) the bilingual site from docs/ and one run's figures and tables.

    python -m se_attention.site build --run-dir results/paper --out site/paper
    python -m se_attention.site serve --run-dir results/paper

docs/ holds only hand-written pages; the numbers, figures and executed notebooks come from the run
folder. Both are staged into a scratch folder (docs/generated/ <- views/figures/ and tables/, docs/ <-
views/notebooks/) and built there with
`mkdocs build --strict`, so docs/ is never mixed with generated files and the smoke and paper runs
cannot overwrite each other's site. The finished site replaces --out in one rename.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

STAGED = ("docs", "mkdocs.yml", "hooks")
# MathJax, served by the site itself (no CDN: offline, or where a CDN is blocked, equations would
# stay raw TeX). From the npm package pinned in package.json (`npm ci`): the TeX-to-HTML bundle and
# the fonts it loads relative to itself.
MATHJAX = "node_modules/mathjax/es5"
MATHJAX_FILES = ("tex-chtml.js", "output/chtml/fonts/woff-v2")

def stage(root: Path, run_dir: Path, where: Path) -> Path:
    for name in STAGED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, where / name)
        elif src.is_file():
            shutil.copy2(src, where / name)
    mathjax = root / MATHJAX
    if not (mathjax / MATHJAX_FILES[0]).is_file():
        raise FileNotFoundError(f"{mathjax / MATHJAX_FILES[0]}: missing; run `npm ci` in the repository "
                                "(the site serves its own MathJax)")
    for name in MATHJAX_FILES:
        src, dst = mathjax / name, where / "docs" / "assets" / "mathjax" / name
        shutil.copytree(src, dst) if src.is_dir() else (dst.parent.mkdir(parents=True, exist_ok=True),
                                                        shutil.copy2(src, dst))
    generated = where / "docs" / "generated"
    for part, folder in (("figures", run_dir / "views" / "figures"), ("tables", run_dir / "tables")):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: missing; run the workflow's figures and report steps first")
        # A write killed mid-way leaves a .<name>.<random>.part file: never publish one.
        shutil.copytree(folder, generated / part, ignore=shutil.ignore_patterns(".*.part", ".*.part.*"))
    # The executed notebooks become pages (docs/explore.<lang>.ipynb), rendered by mkdocs-jupyter.
    for notebook in sorted((run_dir / "views" / "notebooks").glob("*.ipynb")):
        shutil.copy2(notebook, where / "docs" / notebook.name)
    return where / "mkdocs.yml"


def build(root: Path, run_dir: Path, out: Path) -> None:
    scratch_root = root / ".build"
    scratch_root.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_root, prefix="site-") as scratch:
        scratch = Path(scratch)
        config = stage(root, run_dir, scratch / "src")
        built = scratch / "site"
        env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
        subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(built)],
                       check=True, cwd=config.parent, env=env)
        out.parent.mkdir(parents=True, exist_ok=True)
        old = scratch / "old"
        if out.exists():
            out.rename(old)
        built.rename(out)


def serve(root: Path, run_dir: Path, address: str) -> None:
    with tempfile.TemporaryDirectory(prefix="se-attention-site-") as scratch:
        config = stage(root, run_dir, Path(scratch))
        env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
        subprocess.run([sys.executable, "-m", "mkdocs", "serve", "-f", str(config), "-a", address],
                       cwd=config.parent, env=env)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.site", description=__doc__.split("\n")[0])
    p.add_argument("action", choices=["build", "serve"])
    p.add_argument("--run-dir", type=Path, default=Path("results/paper"))
    p.add_argument("--out", type=Path, default=Path("site/paper"))
    p.add_argument("--root", type=Path, default=Path("."), help="repository root (holds docs/ and mkdocs.yml)")
    p.add_argument("--address", default="127.0.0.1:8000")
    args = p.parse_args(argv)
    try:
        if args.action == "build":
            build(args.root.resolve(), args.run_dir.resolve(), args.out.resolve())
            print(f"site written to {args.out}")
        else:
            serve(args.root.resolve(), args.run_dir.resolve(), args.address)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
