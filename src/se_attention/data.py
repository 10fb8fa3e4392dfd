"""Fetch CIFAR-10 from any supported source and prepare one canonical uint8 array file.

Sources (the config key ``data_source``):
  * a URL of an archive: downloaded with retries, checked against ``data_md5``;
  * a local archive (.tar.gz / .tgz / .tar);
  * a local folder.
Layouts, inside an archive or a folder:
  * the official python format: ``data_batch_1..5`` and ``test_batch`` pickles;
  * an image folder: ``train/<class>/*.png|jpg`` and ``test/<class>/*.png|jpg``.

Archives are read member by member and never extracted, so a hostile member name cannot
write anywhere; such names and links are still refused, loudly. The official pickles are read
with an unpickler that only admits the few numpy types CIFAR-10 needs.

Output: ``cifar10.npz`` (x_train/x_test as N x 32 x 32 x 3 uint8, y_* as int64) and a
provenance JSON beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import json
import pickle
import posixpath
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from . import CLASSES, atomic

SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
OFFICIAL_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
IMAGE_SHAPE = (32, 32, 3)


class DataError(Exception):
    """Bad input data: the message names the file, what was expected and what was found."""


# ---------------------------------------------------------------------------------------------
# Checksums and download


def file_digest(path: str | Path, algorithm: str = "md5") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_md5(path: str | Path, expected: str | None) -> str:
    """Return the file's md5; raise DataError naming both sums when ``expected`` differs."""
    actual = file_digest(path, "md5")
    if expected and actual != expected.lower():
        raise DataError(f"{path}: md5 mismatch: expected {expected.lower()}, found {actual}")
    return actual


def is_url(source: str) -> bool:
    return source.split("://", 1)[0] in ("http", "https", "ftp", "file") and "://" in source


def download_name(url: str) -> str:
    """A local file name for ``url``, unique per URL: two hosts' cifar.tar.gz must not share a file.

    The archive's own name stays last (its suffix tells the format); the query string never goes
    in (it may hold a signature), only into the digest.
    """
    path = urllib.parse.urlsplit(url).path
    base = posixpath.basename(path.rstrip("/")) or "download"
    base = "".join(c if c.isalnum() or c in "._-" else "_" for c in base).lstrip(".") or "download"
    return f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{base}"


def download(url: str, target: str | Path, md5: str | None, retries: int = 4, backoff_s: float = 2.0) -> str:
    """Download ``url`` to ``target`` atomically, retrying transient failures; return the md5."""
    target = Path(target)
    last_error: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            with atomic.atomic_path(target) as tmp:
                with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
                    total = int(response.headers.get("Content-Length") or 0)
                    received = _copy_with_progress(response, out, total, desc=f"download {target.name}")
                    if total and received != total:
                        # urllib returns a short body without complaint when the server hangs up.
                        raise OSError(f"connection closed after {received:,} of {total:,} bytes")
                verify_md5(tmp, md5)  # inside the context: a bad file is never renamed into place
            return file_digest(target, "md5")
        except DataError:
            raise  # a checksum mismatch will not improve by retrying
        except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as exc:
            last_error = exc
            if attempt < retries:
                wait = backoff_s * 2 ** (attempt - 1)
                print(f"download attempt {attempt}/{retries} failed ({exc}); retrying in {wait:.0f} s", file=sys.stderr)
                time.sleep(wait)
    raise DataError(f"{url}: download failed after {retries} attempts: {last_error}")


def _copy_with_progress(src, dst, total: int, desc: str) -> int:
    from tqdm import tqdm

    received = 0
    with tqdm(total=total or None, unit="B", unit_scale=True, desc=desc, file=sys.stderr) as bar:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            dst.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return received


# ---------------------------------------------------------------------------------------------
# Reading the sources: each reader yields (relative path, bytes) for every regular file.


def _safe_member_name(archive: Path, member: tarfile.TarInfo) -> str:
    name = member.name
    if member.issym() or member.islnk():
        raise DataError(f"{archive}: refusing archive member {name!r}: links are not allowed")
    if name.startswith("/") or posixpath.isabs(name) or ".." in posixpath.normpath(name).split("/"):
        raise DataError(f"{archive}: refusing archive member {name!r}: path leaves the archive root")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: refusing archive member {name!r}: not a regular file or folder")
    return posixpath.normpath(name)


def _iter_archive(archive: Path) -> Iterator[tuple[str, bytes]]:
    if archive.stat().st_size == 0:
        raise DataError(f"{archive}: the file is empty; expected a .tar.gz archive of CIFAR-10")
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                name = _safe_member_name(archive, member)
                if member.isfile():
                    yield name, tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{archive}: not a readable tar archive (truncated or another format?): {exc}") from exc


def _iter_folder(folder: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            yield path.relative_to(folder).as_posix(), path.read_bytes()


class _CifarUnpickler(pickle.Unpickler):
    """Admit only what the official CIFAR-10 batches contain: dicts, lists and numpy arrays."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"forbidden global {module}.{name}")


def _read_official(files: dict[str, bytes], where: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    by_base = {posixpath.basename(k): v for k, v in files.items()}
    out = {}
    for split, names in OFFICIAL_BATCHES.items():
        xs, ys = [], []
        for name in names:
            if name not in by_base:
                raise DataError(f"{where}: official CIFAR-10 layout is missing batch file {name!r}")
            try:
                batch = _CifarUnpickler(io.BytesIO(by_base[name]), encoding="bytes").load()
                data = np.asarray(batch[b"data"], dtype=np.uint8)
                labels = np.asarray(batch[b"labels"], dtype=np.int64)
            except (pickle.UnpicklingError, KeyError, EOFError, TypeError, ValueError) as exc:
                raise DataError(f"{where}: batch {name!r} is not a CIFAR-10 batch: {exc}") from exc
            if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
                raise DataError(
                    f"{where}: batch {name!r} has data of shape {data.shape} and {len(labels)} labels; "
                    "expected (N, 3072) with N labels"
                )
            xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            ys.append(labels)
        out[split] = (np.concatenate(xs), np.concatenate(ys))
    return out


def _decode_image(name: str, blob: bytes, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(blob)) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{where}: {name} is not a readable image: {exc}") from exc
    if arr.shape != IMAGE_SHAPE:
        raise DataError(f"{where}: {name} has size {arr.shape[1]}x{arr.shape[0]}; expected 32x32 RGB")
    return arr


def _read_image_folder(files: dict[str, bytes], where: str, per_class: dict[str, int | None]) -> dict:
    # The layout root is the folder that holds train/ and test/; it may sit below a top folder.
    grouped: dict[str, dict[str, list[str]]] = {s: defaultdict(list) for s in SPLITS}
    for name in files:
        parts = name.split("/")
        for i, part in enumerate(parts[:-2]):
            if part in SPLITS and len(parts) - i == 3:
                split, cls, fname = parts[i], parts[i + 1], parts[i + 2]
                if fname.startswith("."):
                    break
                if not fname.lower().endswith(IMAGE_SUFFIXES):
                    raise DataError(f"{where}: {name} is not an image (expected {', '.join(IMAGE_SUFFIXES)})")
                grouped[split][cls].append(name)
                break
    out = {}
    for split in SPLITS:
        classes = grouped[split]
        if not classes:
            raise DataError(f"{where}: split {split!r} has no images; expected {split}/<class>/*.png|jpg")
        missing = [c for c in CLASSES if c not in classes]
        extra = sorted(set(classes) - set(CLASSES))
        if missing or extra:
            raise DataError(
                f"{where}: split {split!r} has the wrong classes: missing {missing or 'none'}, "
                f"unexpected {extra or 'none'}; expected exactly {list(CLASSES)}"
            )
        xs, ys = [], []
        limit = per_class.get(split)
        for label, cls in enumerate(CLASSES):
            names = sorted(classes[cls])[:limit]
            xs += [_decode_image(n, files[n], where) for n in names]
            ys += [label] * len(names)
        out[split] = (np.stack(xs), np.asarray(ys, dtype=np.int64))
    return out


def _subset_official(arrays: dict, per_class: dict[str, int | None]) -> dict:
    out = {}
    for split, (x, y) in arrays.items():
        limit = per_class.get(split)
        if limit is None:
            out[split] = (x, y)
            continue
        # The first `limit` images of each class, in file order: deterministic and balanced.
        keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:limit] for c in range(len(CLASSES))]))
        out[split] = (x[keep], y[keep])
    return out


def read_source(path: Path, per_class: dict[str, int | None]) -> tuple[dict, dict]:
    """Read a local archive or folder; return ({split: (x, y)}, {"layout", "image_formats"})."""
    if not path.exists():
        raise DataError(f"{path}: data source not found; expected a URL, a .tar.gz archive or a folder")
    files = dict(_iter_folder(path) if path.is_dir() else _iter_archive(path))
    if not files:
        raise DataError(f"{path}: contains no files; expected CIFAR-10 in the python or image-folder layout")
    basenames = {posixpath.basename(k) for k in files}
    if basenames & {"data_batch_1", "test_batch", "batches.meta"}:
        return _subset_official(_read_official(files, str(path)), per_class), {"layout": "official-python"}
    formats = sorted({posixpath.splitext(k)[1].lower() for k in files} & set(IMAGE_SUFFIXES))
    return _read_image_folder(files, str(path), per_class), {"layout": "image-folder", "image_formats": formats}


# ---------------------------------------------------------------------------------------------
# Prepare


def prepare(source: str, archive: Path, out: Path, provenance: Path, md5: str | None, per_class: dict) -> dict:
    """Read ``archive`` (the local copy of ``source``), write the npz and provenance JSON."""
    source_md5, arrays, layout = _read_checked(archive, md5, per_class)
    lossy = bool(set(layout.get("image_formats", [])) & {".jpg", ".jpeg"})
    _save_arrays(out, arrays)
    info = {
        "source": source if is_url(source) else Path(source).name,
        **layout,
        "source_md5": source_md5,
        "source_sha256": file_digest(archive, "sha256") if archive.is_file() else None,
        # JPEG is lossy: results from it are CIFAR-10 re-encoded, and the site must say so.
        "jpeg_reencoded": lossy,
        "subset_per_class": per_class,
        "arrays_sha256": arrays_digest(arrays),
        "counts": {s: {CLASSES[c]: int(n) for c, n in sorted(Counter(arrays[s][1].tolist()).items())} for s in SPLITS},
        "totals": {s: int(len(arrays[s][1])) for s in SPLITS},
    }
    atomic.write_json(provenance, info)
    return info


def ensure_prepared(source: str, archive: Path, out: Path, provenance: Path, md5: str | None,
                    per_class: dict) -> bool:
    """Make sure ``out`` holds the arrays that ``provenance`` records; return True if it was rebuilt.

    Training and probing read the npz but depend, in the workflow, only on the committed
    provenance file: a fresh clone has results but no data/, and if the npz were their input,
    preparing it for one new run would make Snakemake rerun every finished training downstream.
    So the npz is a cache, rebuilt here from the configured source when missing, and accepted
    only if its arrays hash to the digest the committed results were trained on.
    """
    if out.exists():
        return False
    from filelock import FileLock  # two jobs may need the cache at once; one builds it

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if out.exists():
            return False
        try:
            recorded = json.loads(Path(provenance).read_text())["arrays_sha256"]
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{provenance}: expected a provenance JSON with arrays_sha256 ({exc})") from exc
        if is_url(source) and not archive.exists():
            download(source, archive, md5)
        _, arrays, _ = _read_checked(archive, md5, per_class)
        found = arrays_digest(arrays)
        if found != recorded:
            raise DataError(
                f"{source}: its arrays do not match {provenance}: expected arrays_sha256 "
                f"{recorded}, found {found}. The results there were made from other data; "
                "configure that data_source, or force `snakemake -R prepare` to retrain on this one")
        _save_arrays(out, arrays)
    return True


def _read_checked(archive: Path, md5: str | None, per_class: dict) -> tuple[str | None, dict, dict]:
    """The archive's md5 (checked against ``md5``; None for a folder), its arrays and layout."""
    source_md5 = verify_md5(archive, md5) if archive.is_file() else None
    return (source_md5, *read_source(archive, per_class))


def _save_arrays(out: Path, arrays: dict) -> None:
    atomic.save_npz(out, x_train=arrays["train"][0], y_train=arrays["train"][1],
                    x_test=arrays["test"][0], y_test=arrays["test"][1])


def arrays_digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for split in SPLITS:
        for a in arrays[split]:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as f:
            return {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a prepared CIFAR-10 file ({exc}); re-run the prepare step") from exc


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.data", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("download", help="download an archive URL, verify its md5")
    d.add_argument("--url", required=True)
    d.add_argument("--md5", default=None)
    d.add_argument("--out", required=True, type=Path)
    r = sub.add_parser("prepare", help="read a local archive or folder, write the canonical npz and provenance")
    e = sub.add_parser("ensure", help="rebuild a missing npz from the source, checked against its provenance")
    for q in (r, e):
        q.add_argument("--source", required=True, help="the data_source as configured (URL or path)")
        q.add_argument("--local", required=True, type=Path, help="local archive or folder holding it")
        q.add_argument("--md5", default=None)
        q.add_argument("--train-per-class", type=int, default=None)
        q.add_argument("--test-per-class", type=int, default=None)
        q.add_argument("--out", required=True, type=Path)
    r.add_argument("--provenance", required=True, type=Path, help="provenance JSON to write")
    e.add_argument("--provenance", required=True, type=Path, help="provenance JSON the arrays must match")
    args = p.parse_args(argv)
    try:
        if args.cmd == "download":
            print(download(args.url, args.out, args.md5))
        else:
            per_class = {"train": args.train_per_class, "test": args.test_per_class}
            if args.cmd == "ensure":
                rebuilt = ensure_prepared(args.source, args.local, args.out, args.provenance, args.md5, per_class)
                # On stderr, which the workflow keeps in the job's log.
                print(f"{args.out}: {'rebuilt from ' + args.source if rebuilt else 'present'}", file=sys.stderr)
            else:
                info = prepare(args.source, args.local, args.out, args.provenance, args.md5, per_class)
                print(json.dumps(info["totals"]))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
