"""What produced a result: package versions, device, git commit. Stored beside every metric."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata


# Pillow decodes the JPEG images (its decoder decides the data hash); scipy gives the t quantile and
# p-values of the report; grad-cam computes the Grad-CAM maps of the probe.
VERSIONED = ("torch", "torchvision", "numpy", "matplotlib", "snakemake", "pillow", "scipy", "grad-cam")


def package_versions(names=VERSIONED) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> dict[str, object]:
    """The commit and whether tracked files outside results/ had uncommitted changes.

    results/ is left out because the workflow itself rewrites it while it runs (Snakemake removes
    a job's old outputs first), so counting it would mark every workflow run as dirty. None
    outside a git checkout.
    """
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
                               capture_output=True, text=True, check=True).stdout.strip() != ""
        return {"commit": sha, "dirty": dirty}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def device_description(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"{platform.processor() or platform.machine()} CPU, {threads} thread{'s' if threads > 1 else ''}"
