"""What produced a result: package versions, device, git commit. Stored beside every metric."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
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


def cpu_model() -> str:
    """The CPU's marketing name (Linux: /proc/cpuinfo), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_isa() -> str:
    """The vector instruction set torch's CPU kernels dispatch to (AVX512, AVX2, DEFAULT, ...)."""
    import torch

    try:
        return torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch before 2.3
        return "unknown ISA"


def native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX tiles or AVX-512 BF16); elsewhere oneDNN emulates it."""
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(check() for check in checks if check is not None)  # private helpers: absent in some torch builds


def device_description(device) -> str:
    """The device in words, for provenance and speed records: GPU name, or CPU model, ISA and threads.

    The machines these runs use change from day to day (AVX2 one day, AVX-512 with AMX the next),
    so a speed is only meaningful with the CPU and the kernels torch picked on it.
    """
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"{cpu_model()} ({platform.machine()}, torch {cpu_isa()}), {threads} thread{'s' if threads > 1 else ''}"
