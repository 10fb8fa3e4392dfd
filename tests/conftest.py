"""Shared fixtures: tiny synthetic CIFAR-10 sources in every supported layout."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from se_attention import CLASSES  # noqa: E402

# The shared real CIFAR-10 copy (JPEG re-encoded) beside the repository; only the smoke workflow uses it.
# SE_CIFAR10_ARCHIVE points elsewhere; without it those tests are skipped, except where
# SE_REQUIRE_DATA=1 (.ci/run sets it) or CI is set: there a missing copy is a failure.
SHARED_ARCHIVE = Path(os.environ.get("SE_CIFAR10_ARCHIVE") or ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz")


def require_shared_archive() -> Path:
    if SHARED_ARCHIVE.exists():
        return SHARED_ARCHIVE
    message = (f"the CIFAR-10 copy for the smoke workflow is missing: {SHARED_ARCHIVE}. Put the JPEG CIFAR-10 "
               "archive there (../shared/data/cifar10-jpeg.tar.gz beside the repository) or set SE_CIFAR10_ARCHIVE")
    if os.environ.get("SE_REQUIRE_DATA") == "1" or os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def random_images(n: int, seed: int = 0, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def write_image_folder(root: Path, per_class: dict[str, int], suffix: str = ".png", classes=CLASSES) -> Path:
    for split, n in per_class.items():
        for c, cls in enumerate(classes):
            d = root / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i, img in enumerate(random_images(n, seed=c + (100 if split == "test" else 0))):
                Image.fromarray(img).save(d / f"{i:04d}{suffix}")
    return root


def tar_folder(folder: Path, archive: Path, arcname: str = "cifar10") -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return archive


def official_batch(n: int, seed: int) -> bytes:
    images = random_images(n, seed)
    labels = [i % 10 for i in range(n)]
    data = images.transpose(0, 3, 1, 2).reshape(n, -1)
    return pickle.dumps({b"batch_label": b"x", b"labels": labels, b"data": data, b"filenames": [b"f"] * n})


def write_official_archive(path: Path, per_batch: int = 20, drop: str | None = None,
                           replace: dict[str, bytes] | None = None) -> Path:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    with tarfile.open(path, "w:gz") as tar:
        for i, name in enumerate(names):
            if name == drop:
                continue
            blob = (replace or {}).get(name) or official_batch(per_batch, i)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


def write_prepared(path: Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """A prepared npz with learnable structure: each class has its own mean colour."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = np.arange(n) % 10
        base = (y[:, None, None, None] * 25 + 10).astype(np.int16)
        x = np.clip(base + rng.integers(-20, 20, size=(n, 32, 32, 3)), 0, 255).astype(np.uint8)
        return x, y.astype(np.int64)

    xtr, ytr = make(n_train)
    xte, yte = make(n_test)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return path


@pytest.fixture
def prepared(tmp_path) -> Path:
    return write_prepared(tmp_path / "cifar10.npz")


@pytest.fixture
def smoke_recipe() -> dict:
    from se_attention.config import load_config, recipe

    return recipe(load_config(ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml"))


def merged_config(*configfiles: str) -> dict:
    """config/config.yaml with the given files of config/ merged over it, in order."""
    from se_attention.config import load_config

    return load_config(ROOT / "config" / "config.yaml", *(ROOT / "config" / f for f in configfiles))


def config_models(*configfiles: str) -> list[str]:
    return merged_config(*configfiles)["models"]


_PAPER = merged_config()
PAPER_RUNS = len(_PAPER["models"]) * len(_PAPER["seeds"])  # one run per model and seed


def models_using(module: str, *configfiles: str) -> list[str]:
    """The config's models whose training stamp covers the package module ``module`` (e.g. "se").

    Read from the stamp's own module list, as train.smk builds it: the training code's imports
    plus the model's attention module and its imports. The engine (fused.py) imports se.py for
    its SE kernel, so every model's training covers se.py; eca.py is ECA's alone.
    """
    from se_attention.attention import stamp_modules
    from se_attention.stamps import stamped_modules

    return [m for m in config_models(*configfiles) if module in stamped_modules("train", stamp_modules(m))]


def copy_worktree(dest: Path) -> Path:
    """Copy the repository's tracked and untracked-but-not-ignored files (what a commit would hold)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    link_node_modules(dest)
    return dest


def link_node_modules(dest: Path) -> None:
    """KaTeX for the site build (npm ci, not committed) for a copy of the repository that builds the site."""
    if (ROOT / "node_modules").is_dir() and not (dest / "node_modules").exists():
        (dest / "node_modules").symlink_to(ROOT / "node_modules", target_is_directory=True)


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def snakemake(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["snakemake", "--cores", "2", *args], cwd=repo, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def smoke_repo(tmp_path_factory):
    """A copy of the repository after the smoke workflow ran on the shared CIFAR-10 copy."""
    archive = require_shared_archive()
    repo = copy_worktree(tmp_path_factory.mktemp("repo"))
    args = ("--configfile", "config/smoke.yaml", "--config", f"data_source={archive}")
    snakemake(repo, *args)
    return repo, args
