"""Build or preview the bilingual site of one run: plain MkDocs, with SE_RUN naming the run.

    mkdocs serve                     # the committed paper run, reloaded when results change
    SE_RUN=smoke mkdocs build --strict -d site/smoke
    python -m se_attention.site build --run smoke --out site/smoke   # the same, never half-written

The MkDocs hook hooks/run_results.py takes the figures, tables and executed notebooks from
results/<run>/, and hooks/maths.py typesets the equations with KaTeX from node_modules/ (`npm ci`); docs/ holds only hand-written pages.
This module only adds what a workflow wants around `mkdocs build`: the finished site replaces
--out in one rename, so a failed build leaves the last good one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def mkdocs(action: str, run: str, root: Path, *args: str) -> None:
    env = dict(os.environ, SE_RUN=run, NO_MKDOCS_2_WARNING="1")
    subprocess.run([sys.executable, "-m", "mkdocs", action, "-f", str(root / "mkdocs.yml"), *args],
                   check=True, cwd=root, env=env)


def build(root: Path, run: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as scratch:
        built = Path(scratch) / "site"
        mkdocs("build", run, root, "--strict", "-d", str(built))
        if out.exists():
            out.rename(Path(scratch) / "old")
        built.rename(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.site", description=__doc__.split("\n")[0])
    p.add_argument("action", choices=["build", "serve"])
    p.add_argument("--run", default="paper", help="the results/<run>/ folder the site shows")
    p.add_argument("--out", type=Path, default=None, help="where the site goes (default site/<run>)")
    p.add_argument("--root", type=Path, default=Path("."), help="repository root (holds mkdocs.yml)")
    p.add_argument("--address", default="127.0.0.1:8000")
    args = p.parse_args(argv)
    root = args.root.resolve()
    try:
        if args.action == "build":
            out = (args.out or Path("site") / args.run).resolve()
            build(root, args.run, out)
            print(f"site written to {out}")
        else:
            mkdocs("serve", args.run, root, "-a", args.address)
    except subprocess.CalledProcessError as exc:
        print(f"error: mkdocs {args.action} failed for results/{args.run} (exit {exc.returncode}); "
              "its messages are above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
