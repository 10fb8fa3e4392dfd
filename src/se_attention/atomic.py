"""Write files so that a crash never leaves a truncated file under its final name.

Each writer fills a temporary file in the same directory, flushes it to disk and renames it
over the target: ``os.replace`` is atomic on POSIX, so readers see the old file or the new one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it to ``target`` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Keep the real suffix last: numpy and matplotlib pick the format from it.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix or target.suffix + ".part")
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600 files; give the final file the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        try:
            yield tmp_path
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        except (OSError, RuntimeError) as exc:
            # torch.save reports a full disk as "PytorchStreamWriter failed writing file data/0".
            if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or _nearly_full(target.parent):
                raise DiskFull(errno.ENOSPC, f"{target}: cannot write: no space left on the device "
                                             f"({shutil.disk_usage(target.parent).free:,} bytes free); "
                                             "free some space and run the step again") from None
            raise
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


class DiskFull(OSError):
    """A write failed because the device is full; the message names the file."""


def _nearly_full(folder: Path) -> bool:
    return shutil.disk_usage(folder).free < (1 << 20)


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: str | os.PathLike, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def save_npz(target: str | os.PathLike, **arrays: Any) -> None:
    import numpy as np

    with atomic_path(target, suffix=".part.npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def save_torch(target: str | os.PathLike, obj: Any) -> None:
    import torch

    with atomic_path(target) as tmp:
        torch.save(obj, tmp)


def save_figure(fig: Any, target: str | os.PathLike, **kwargs: Any) -> None:
    target = Path(target)
    with atomic_path(target, suffix=".part" + target.suffix) as tmp:
        fig.savefig(tmp, **kwargs)


def save_figures(figures: dict[str, Any], out_dir: str | os.PathLike, suffix: str = "", **kwargs: Any) -> list[Path]:
    """Save each matplotlib figure as ``out_dir/<name><suffix>`` and close it; the paths written."""
    import matplotlib.pyplot as plt  # here, not at the top: most callers of this module draw nothing

    written = []
    for name, fig in figures.items():
        path = Path(out_dir) / f"{name}{suffix}"
        save_figure(fig, path, **kwargs)
        plt.close(fig)
        written.append(path)
    return written


class UnreadableFile(ValueError):
    """A results file that is missing, truncated or not what its reader expects; names the file."""


RECOVER = "restore it with `git checkout -- <file>` or rerun the step that writes it"


def read_json(path: str | os.PathLike, expected: str = "a JSON file", keys: Iterable[str] = ()) -> Any:
    """Read what ``write_json`` wrote; a missing or truncated file raises one line naming it.

    json's own message ("Expecting ',' delimiter: line 19868") does not say which file; a
    learner with a dozen results files needs the name, what was expected and how to recover.
    ``keys`` are the top-level entries the reader needs: a file without them is named too, instead
    of a bare KeyError far from the read.
    """
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnreadableFile(f"{path}: file not found; expected {expected}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnreadableFile(f"{path}: expected {expected}, found unreadable or truncated content ({exc}); "
                             f"{RECOVER}") from None
    missing = [k for k in keys if not isinstance(obj, dict) or k not in obj]
    if missing:
        raise UnreadableFile(f"{path}: expected {expected}, but it has no {', '.join(map(repr, missing))}; {RECOVER}")
    return obj


def read_npz(path: str | os.PathLike, expected: str = "a NumPy archive") -> dict[str, Any]:
    """Every array of what ``save_npz`` wrote, read into memory; a missing or truncated file names itself."""
    import zipfile
    import zlib

    import numpy as np

    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise UnreadableFile(f"{path}: file not found; expected {expected}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise UnreadableFile(f"{path}: expected {expected}, found unreadable or truncated content ({exc}); "
                             f"{RECOVER}") from None
