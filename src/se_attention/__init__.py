"""Squeeze-and-Excitation channel attention on CIFAR-10: a reproducible paper.

Every step runs as ``python -m se_attention.<step>``; the Snakefile only wires them together.
"""

__version__ = "0.1.0"

# CIFAR-10's official label order; image-folder sources are mapped onto it by name.
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def run_folder(run_dir, model: str, seed: int):
    """Where one training run's files live: <run_dir>/runs/<model>/seed<k>/."""
    from pathlib import Path

    return Path(run_dir) / "runs" / model / f"seed{seed}"
