"""Code stamps: which code and settings made a step's outputs, named by their digest.

Snakemake cannot see the modules a step imports, and in a fresh clone file times say nothing
(git writes files in path order, so committed results look older or newer than their code by
accident). So each step takes as input a small stamp file whose *name* is the digest of the code
and settings that decide its outputs: ``results/<run>/code-hashes/<step>-<digest>.txt``. Parsing
the workflow only computes that name; a rule writes the file when a job needs it. Hence:

* a dry run, a run the lock refuses and a run with an override write nothing;
* looking at a change and undoing it plans nothing: the old name, and its file, come back;
* different settings never overwrite each other's stamp.

What counts as a change, on purpose:

* the step's module and every package module it imports (found from its import statements, to
  any depth), except the modules in ``NOT_DECIDING``, which write or record results but never
  change a value;
* of a module, its code: comments, docstrings, blank lines, trailing spaces and line endings are
  not (editing a comment must not retrain for 1.5 hours);
* other files the step reads (catalogues, pages, notebooks) and the files of a module's folder in
  ``MODULE_FOLDERS`` (the C++ kernels fused.py compiles): their bytes, line endings aside;
* the step's settings: the part of the configuration it uses.

    python -m se_attention.stamps train          # the modules the train step's digest covers
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import io
import json
import sys
import tokenize
from pathlib import Path
from typing import Iterable

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE = PACKAGE_DIR.name

# Modules imported by steps whose code cannot change a number, a table or a figure.
NOT_DECIDING = {
    "atomic": "writes files through a temporary name; the bytes are the caller's",
    "provenance": "records versions, device and commit beside results",
    "config": "reads and validates the configuration; the values a step uses are its settings",
    "stamps": "this module",
    # The registry imports no module itself (it imports by name when a model is built); each
    # model's training stamp holds its registry entry as settings and its module's code.
    "attention": "maps a model name to its attention module; the entry a model uses is in its stamp",
}
# Folders of the package whose files a module compiles or reads, so they decide what it computes as its code does.
MODULE_FOLDERS = {
    "fused": "csrc",  # the C++ kernels it builds on first use
}
# Modules whose effect reaches other steps only through a file that carries its own digest.
THROUGH_FILES = {
    "data": "the prepared arrays, checked against arrays_sha256 in the committed provenance.json",
}


def _normalized_lines(text: str) -> list[str]:
    """The code of a module without comments, docstrings, blank lines and trailing spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:  # a comment runs to the end of its line
            row, col = tok.start
            lines[row - 1] = lines[row - 1][:col]
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) or not node.body:
            continue
        first = node.body[0]
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)):
            continue
        # Only a docstring on lines of its own: `def f(): "doc"` keeps its line, since it holds code.
        before = lines[first.lineno - 1].encode()[:first.col_offset]
        after = lines[first.end_lineno - 1].encode()[first.end_col_offset:]
        if before.strip() or after.strip():
            continue
        for row in range(first.lineno, first.end_lineno + 1):
            lines[row - 1] = ""
    return [line.rstrip() for line in lines if line.strip()]


# Parsing is most of the time a dry run takes, and every step asks for the same modules: both
# caches are keyed by the source text, so an edited file is parsed again.
@functools.cache
def code_digest_of_source(text: str) -> str:
    return hashlib.sha256("\n".join(_normalized_lines(text)).encode()).hexdigest()


@functools.cache
def _import_statements(text: str) -> tuple[tuple[int, str, tuple[str, ...]], ...]:
    """(level, module, names) of each import statement: ``import a.b`` is (0, "a.b", ())."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or "", tuple(a.name for a in node.names)))
        elif isinstance(node, ast.Import):
            found += [(0, alias.name, ()) for alias in node.names]
    return tuple(found)


def _imported_modules(module: str, package_dir: Path) -> set[str]:
    """Package modules that ``module`` imports directly (``__init__`` for names it defines)."""
    found: set[str] = set()

    def add(dotted: str, names: Iterable[str]) -> None:
        if dotted:
            found.add(dotted.split(".")[0])
            return
        for name in names:  # `from . import x`: x is a module or a name defined in __init__
            found.add(name if (package_dir / f"{name}.py").exists() else "__init__")

    text = (package_dir / f"{module}.py").read_text(encoding="utf-8")
    for level, dotted, names in _import_statements(text):
        if level == 1:
            add(dotted, names)
        elif level == 0 and dotted.split(".")[0] == PACKAGE:
            if names:  # from se_attention.x import y
                add(dotted.partition(".")[2], names)
            elif dotted.startswith(PACKAGE + "."):  # import se_attention.x
                found.add(dotted.split(".")[1])
    return found - {module}


def modules_of(step_module: str, package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The modules whose code decides what ``step_module`` writes, in a stable order."""
    seen, todo = set(), [step_module]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        if not (package_dir / f"{module}.py").exists():
            raise FileNotFoundError(f"{package_dir / (module + '.py')}: imported by a step but not found")
        seen.add(module)
        skip = set(NOT_DECIDING) | {m for m in THROUGH_FILES if m != step_module}
        todo += sorted(_imported_modules(module, package_dir) - skip)
    return sorted(seen)


def _file_digest(path: Path) -> str:
    data = path.read_bytes().replace(b"\r\n", b"\n")
    return hashlib.sha256(data).hexdigest()


def stamped_modules(step_module: str | None, extra_modules: Iterable[str] = (),
                    package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The modules a step's stamp covers: its module's and ``extra_modules``' imports, sorted."""
    return sorted({m for start in ([step_module] if step_module else []) + list(extra_modules)
                   for m in modules_of(start, package_dir)})


def stamp_text(step_module: str | None, settings: dict, files: Iterable[str | Path] = (), root: Path | None = None,
               package_dir: Path = PACKAGE_DIR, extra_modules: Iterable[str] = ()) -> str:
    """What a stamp holds: one digest per module and file, then the settings as sorted JSON.

    ``files`` are paths relative to ``root`` (the repository), recorded as given. A step that runs
    no package module (a notebook) passes None. ``extra_modules`` are modules the step loads by
    name rather than by an import statement (a model's attention module), with their imports.
    """
    modules = stamped_modules(step_module, extra_modules, package_dir)
    lines = [f"{code_digest_of_source((package_dir / f'{m}.py').read_text(encoding='utf-8'))}  "
             f"{PACKAGE}/{m}.py (code)" for m in modules]
    lines += [f"{_file_digest(path)}  {PACKAGE}/{path.relative_to(package_dir).as_posix()}"
              for m in modules if m in MODULE_FOLDERS
              for path in sorted((package_dir / MODULE_FOLDERS[m]).iterdir()) if path.is_file()]
    root = Path(root or ".")
    lines += [f"{_file_digest(root / f)}  {Path(f).as_posix()}" for f in sorted(map(str, files))]
    lines.append("settings " + json.dumps(settings, sort_keys=True))
    return "\n".join(lines) + "\n"


def stamp_name(step: str, text: str) -> str:
    """The stamp's file name: the step, then 16 hex digits of the digest of its text."""
    return f"{step}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.txt"


def code_digest(step_module: str, extra_modules: Iterable[str] = ()) -> str:
    """The digest of a step's code alone (no settings): recorded with results and in resume files."""
    return hashlib.sha256(stamp_text(step_module, {}, extra_modules=extra_modules).encode()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.stamps", description=__doc__.split("\n")[0])
    p.add_argument("module", help="a step's module, e.g. train, probe, figures, report, data")
    p.add_argument("extra", nargs="*", help="modules the step loads by name, e.g. train se")
    args = p.parse_args(argv)
    try:
        print(stamp_text(args.module, {}, extra_modules=args.extra), end="")
    except (FileNotFoundError, SyntaxError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
