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
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from . import CLASSES, atomic

SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
OFFICIAL_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
OFFICIAL_NAMES = {name for names in OFFICIAL_BATCHES.values() for name in names}
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


def public_source(source: str) -> str:
    """What may be published about a source: a URL without credentials, query or fragment (a
    signed URL's query is a secret); of a local path, only its name (the rest is this machine's).
    """
    if not is_url(source):
        return Path(source).name
    parts = urllib.parse.urlsplit(source)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


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
                print(f"download attempt {attempt}/{retries} failed ({exc}) for {public_source(url)}; "
                      f"retrying in {wait:.0f} s", file=sys.stderr)
                time.sleep(wait)
    raise DataError(f"{public_source(url)}: download failed after {retries} attempts: {last_error}")


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
# Reading the sources. A source is read in one pass that keeps only the members a layout can
# use, each under a size cap, so a hostile archive costs at most what a real CIFAR-10 costs.

MAX_MEMBERS = 150_000  # CIFAR-10 as images is 60,000 files plus folders
MAX_BATCH_BYTES = 64 << 20  # an official batch is 31 MB
MAX_IMAGE_BYTES = 1 << 20  # a 32 x 32 image is a few KB in any format
IMAGE_MODES = {"RGB", "L", "P"}  # 8 bits per channel; 16-bit PNGs would be clipped to white by convert()


def _member_cap(name: str) -> int | None:
    """The size cap of a member that a layout reads, or None for a member no layout reads."""
    parts = name.split("/")
    if parts[-1] in OFFICIAL_NAMES:
        return MAX_BATCH_BYTES
    if len(parts) >= 3 and parts[-3] in SPLITS and not parts[-1].startswith("."):
        return MAX_IMAGE_BYTES
    return None


def _safe_member_name(archive: Path, member: tarfile.TarInfo) -> str:
    name = member.name
    if member.issym() or member.islnk():
        raise DataError(f"{archive}: refusing archive member {name!r}: links are not allowed")
    if name.startswith("/") or posixpath.isabs(name) or ".." in posixpath.normpath(name).split("/"):
        raise DataError(f"{archive}: refusing archive member {name!r}: path leaves the archive root")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: refusing archive member {name!r}: not a regular file or folder")
    return posixpath.normpath(name)


def _checked_size(where: Path, name: str, size: int) -> bool:
    """True if a layout reads ``name``; refuses it when it is larger than such a member can be."""
    cap = _member_cap(name)
    if cap is not None and size > cap:
        raise DataError(f"{where}: member {name!r} is {size:,} bytes; expected at most {cap:,} for a CIFAR-10 "
                        f"{'batch' if cap == MAX_BATCH_BYTES else 'image'}")
    return cap is not None


def _count(where: Path, n: int) -> None:
    if n > MAX_MEMBERS:
        raise DataError(f"{where}: more than {MAX_MEMBERS:,} members; expected CIFAR-10 (60,000 images at most)")


def _iter_archive(archive: Path) -> Iterator[tuple[str, bytes]]:
    if archive.stat().st_size == 0:
        raise DataError(f"{archive}: the file is empty; expected a .tar.gz archive of CIFAR-10")
    seen: set[str] = set()
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            count = 0
            while (member := tar.next()) is not None:
                count += 1
                _count(archive, count)
                name = _safe_member_name(archive, member)
                if member.isfile():
                    if name in seen:  # tar keeps both copies; extracting would silently keep the last
                        raise DataError(f"{archive}: member {name!r} appears twice; expected unique names")
                    seen.add(name)
                    if _checked_size(archive, name, member.size):
                        yield name, tar.extractfile(member).read()
                tar.members.clear()  # headers of members already read are not needed again
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{archive}: not a readable tar archive (truncated or another format?): {exc}") from exc


def _iter_folder(folder: Path) -> Iterator[tuple[str, bytes]]:
    root = folder.resolve()
    paths = []
    for n, path in enumerate(folder.rglob("*"), start=1):  # counted while listing, before sorting
        _count(folder, n)
        paths.append(path)
    for path in sorted(paths):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise DataError(f"{folder}: refusing {name!r}: a link to {path.resolve()}, outside the folder")
        if path.is_file() and _checked_size(folder, name, path.stat().st_size):
            yield name, path.read_bytes()


# The official batches are pickles. Python 2 wrote numpy arrays with _reconstruct and ndarray
# state; Python 3 writes bytes at protocol 2 with _codecs.encode and arrays at protocol 5 with
# _frombuffer. Each admitted global is wrapped so that it can only build bytes or a numeric array:
# an object dtype would let a pickle call anything when the array is read.


def _dtype(*args, **kwargs) -> np.dtype:
    dtype = np.dtype(*args, **kwargs)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"forbidden object dtype {dtype}")
    return dtype


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    if not isinstance(text, str) or encoding.lower().replace("-", "") not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"forbidden _codecs.encode of {type(text).__name__} as {encoding!r}")
    return text.encode("latin1")


def _frombuffer(buffer, dtype, shape, order) -> np.ndarray:
    return np.frombuffer(buffer, dtype=_dtype(dtype)).reshape(shape, order=order)


def _reconstruct(subtype, shape, dtype) -> np.ndarray:
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"forbidden array subclass {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, _dtype(dtype))


class _CifarUnpickler(pickle.Unpickler):
    """Admit only what official CIFAR-10 batches contain: dicts, lists, bytes and numeric arrays."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # numpy 1 names
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # numpy 2 names
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _dtype,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer,
        ("_codecs", "encode"): _latin1_bytes,
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")
        return self.ALLOWED[(module, name)]


def _field(batch: dict, key: str):
    for k in (key.encode(), key):  # Python 2 pickles (read as bytes) and Python 3 ones
        if k in batch:
            return batch[k]
    raise KeyError(key)


def _read_batch(blob: bytes, name: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _CifarUnpickler(io.BytesIO(blob), encoding="bytes").load()
        data, labels = _field(batch, "data"), _field(batch, "labels")
    except (pickle.UnpicklingError, KeyError, EOFError, TypeError, ValueError, AttributeError,
            IndexError, RecursionError, MemoryError) as exc:
        raise DataError(f"{where}: batch {name!r} is not a CIFAR-10 batch: {type(exc).__name__}: {exc}") from exc
    # Refuse rather than convert: float data in [0, 1] would become black images, int16 would wrap.
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        found = (f"{data.dtype} of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__)
        raise DataError(f"{where}: batch {name!r} has data of {found}; expected uint8 of shape (N, 3072)")
    # A list is checked item by item before numpy sees it: a nested list would make a huge array.
    if isinstance(labels, list) and all(type(v) is int for v in labels):
        labels = np.asarray(labels, dtype=np.int64)
    elif not (isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iu"):
        raise DataError(f"{where}: batch {name!r} has labels of type {type(labels).__name__}; "
                        "expected a list of integers from 0 to 9")
    if len(labels) != len(data):
        raise DataError(f"{where}: batch {name!r} has data of shape {data.shape} and {len(labels)} labels; "
                        "expected (N, 3072) with N labels")
    bad = labels[(labels < 0) | (labels >= len(CLASSES))]
    if bad.size:
        raise DataError(f"{where}: batch {name!r} has label {int(bad[0])} ({bad.size} labels out of range); "
                        f"expected integers from 0 to {len(CLASSES) - 1}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int64)


def _read_official(files: dict[str, bytes], where: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    by_base = {posixpath.basename(k): v for k, v in files.items()}
    out = {}
    for split, names in OFFICIAL_BATCHES.items():
        for name in names:
            if name not in by_base:
                raise DataError(f"{where}: official CIFAR-10 layout is missing batch file {name!r}")
        xs, ys = zip(*(_read_batch(by_base[name], name, where) for name in names))
        out[split] = (np.concatenate(xs), np.concatenate(ys))
    return out


def _decode_image(name: str, blob: bytes, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(blob)) as im:
            # The header says the size and the mode; check them before decoding a single pixel.
            if im.size != IMAGE_SHAPE[:2]:
                raise DataError(f"{where}: {name} has size {im.size[0]}x{im.size[1]}; expected 32x32 RGB")
            if im.mode not in IMAGE_MODES:
                raise DataError(f"{where}: {name} has pixel mode {im.mode}; expected 8 bits per channel "
                                f"({', '.join(sorted(IMAGE_MODES))})")
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Image.DecompressionBombError as exc:  # Pillow refuses this one while reading the header
        raise DataError(f"{where}: {name} declares an image far larger than 32x32 ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{where}: {name} is not a readable image: {exc}") from exc
    return arr


def _read_image_folder(files: dict[str, bytes], where: str) -> dict:
    # The layout root is the folder that holds train/ and test/; it may sit below a top folder.
    grouped: dict[str, dict[str, list[str]]] = {s: defaultdict(list) for s in SPLITS}
    for name in files:
        parts = name.split("/")
        split, cls, fname = parts[-3:]
        if split not in SPLITS:
            continue
        if not fname.lower().endswith(IMAGE_SUFFIXES):
            raise DataError(f"{where}: {name} is not an image (expected {', '.join(IMAGE_SUFFIXES)})")
        grouped[split][cls].append(name)
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
        for label, cls in enumerate(CLASSES):
            names = sorted(classes[cls])
            xs += [_decode_image(n, files[n], where) for n in names]
            ys += [label] * len(names)
        out[split] = (np.stack(xs), np.asarray(ys, dtype=np.int64))
    return out


def _warn_if_unbalanced(arrays: dict, where: str) -> None:
    """CIFAR-10 is balanced; a class far below the others is a copy that lost files."""
    for split, (_, y) in arrays.items():
        counts = np.bincount(y, minlength=len(CLASSES))
        median = float(np.median(counts))
        short = [f"{CLASSES[c]} {n:,}" for c, n in enumerate(counts) if n < median / 2]
        if short:
            print(f"warning: {where}: split {split!r} is unbalanced: {', '.join(short)} images against a median "
                  f"of {median:,.0f} per class", file=sys.stderr)


def _subset(arrays: dict, per_class: dict[str, int | None]) -> dict:
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
    """Read a local archive or folder; return ({split: (x, y)}, {"layout", "image_formats"}).

    Every member is read and checked before the subset is cut: a corrupt image must stop the
    smoke run, not the full run hours later.
    """
    if not path.exists():
        raise DataError(f"{path}: data source not found; expected a URL, a .tar.gz archive or a folder")
    files = dict(_iter_folder(path) if path.is_dir() else _iter_archive(path))
    if not files:
        raise DataError(f"{path}: contains no CIFAR-10 files; expected the python or the image-folder layout")
    basenames = {posixpath.basename(k) for k in files}
    if basenames & OFFICIAL_NAMES:
        arrays, layout = _read_official(files, str(path)), {"layout": "official-python"}
    else:
        formats = sorted({posixpath.splitext(k)[1].lower() for k in files} & set(IMAGE_SUFFIXES))
        arrays, layout = _read_image_folder(files, str(path)), {"layout": "image-folder", "image_formats": formats}
    _warn_if_unbalanced(arrays, str(path))
    return _subset(arrays, per_class), layout


# ---------------------------------------------------------------------------------------------
# Prepare


def prepare(source: str, archive: Path, out: Path, provenance: Path, md5: str | None, per_class: dict) -> dict:
    """Read ``archive`` (the local copy of ``source``), write the npz and provenance JSON."""
    source_md5, arrays, layout = _read_checked(archive, md5, per_class)
    lossy = bool(set(layout.get("image_formats", [])) & {".jpg", ".jpeg"})
    _save_arrays(out, arrays)
    info = {
        "source": public_source(source),
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
    try:
        recorded = atomic.read_json(provenance, "the provenance JSON of the committed results")["arrays_sha256"]
    except (atomic.UnreadableFile, KeyError, TypeError) as exc:
        raise DataError(f"{provenance}: expected a provenance JSON with arrays_sha256 ({exc})") from exc
    from filelock import FileLock  # two jobs may need the cache at once; one builds it

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        # A cache left by other data (an older checkout, a `git pull` that brought a new
        # provenance.json, another source) must not be trained on under this digest.
        if out.exists():
            cached = _cached_digest(out)
            if cached == recorded:
                return False
            print(f"{out}: holds arrays_sha256 {cached}, not {recorded} as {provenance} records; "
                  "rebuilding it from the source", file=sys.stderr)
        if is_url(source) and not archive.exists():
            download(source, archive, md5)
        _, arrays, _ = _read_checked(archive, md5, per_class)
        found = arrays_digest(arrays)
        if found != recorded:
            raise DataError(
                f"{public_source(source)}: its arrays do not match {provenance}: expected arrays_sha256 "
                f"{recorded}, found {found}. The results there were made from other data; "
                "configure that data_source, or force `snakemake -R prepare` to retrain on this one")
        _save_arrays(out, arrays)
    return True


def _cached_digest(path: Path) -> str | None:
    try:
        arrays = load_npz(path)
    except DataError:
        return None  # an unreadable cache is rebuilt like a stale one
    return arrays_digest({s: (arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in SPLITS})


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
    except (DataError, atomic.DiskFull) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
