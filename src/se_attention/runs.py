"""The committed files of a run's trainings, read and checked, for the steps that draw and tabulate them.

Each training run lives in runs/<model>/seed<k>/ (se_attention.run_folder). A missing or truncated
file, or one without a key its readers use, raises one line that names the file and how to
restore it (atomic.UnreadableFile), not a bare KeyError deep inside a plot.
"""

from __future__ import annotations

from pathlib import Path

from . import atomic, run_folder

# What the tables and the zoo read from each metrics.json.
METRICS_KEYS = ("seed", "epochs", "final_test_acc", "best_test_acc", "best_epoch", "parameters", "seconds_per_epoch",
                "images_per_second", "provenance")
# What the curves and the schedules read from each history.json.
HISTORY_KEYS = ("epochs", "iter_loss")


def load_metrics(run_dir: Path, models: list[str], seeds: list[int]) -> dict[str, list[dict]]:
    """Each run's metrics.json, by model, in the order of ``seeds``."""
    return {m: [atomic.read_json(run_folder(run_dir, m, s) / "metrics.json", "a training run's metrics", METRICS_KEYS)
                for s in seeds] for m in models}


def load_histories(run_dir: Path, models: list[str], seeds: list[int]) -> dict[str, list[dict]]:
    """Each run's history.json, by model, in the order of ``seeds``, with its seed added."""
    return {m: [{**atomic.read_json(run_folder(run_dir, m, s) / "history.json", "a training run's history",
                                    HISTORY_KEYS), "seed": s} for s in seeds] for m in models}


def load_probes(run_dir: Path, models: list[str], seed: int) -> dict[str, dict]:
    """The probe of each model's run of ``seed`` (se_attention.probe)."""
    return {m: atomic.read_npz(run_folder(run_dir, m, seed) / "probe.npz", "a trained model's probe") for m in models}
