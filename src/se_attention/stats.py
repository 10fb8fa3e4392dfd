"""The statistics behind the tables: per-model summaries, the paired SE - CNN gap, gate specificity.

Numbers only; tables.py turns them into words.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import scipy.stats


CONFIDENCE = 0.95  # level of the confidence interval of the SE - CNN gap


def summarize(metrics: dict[str, list[dict]]) -> dict:
    out = {}
    for model, runs in metrics.items():
        out[model] = {
            "seeds": [r["seed"] for r in runs],
            "epochs": sorted({r["epochs"] for r in runs}),
            "final_test_acc": [r["final_test_acc"] for r in runs],
            "best_test_acc": [r["best_test_acc"] for r in runs],
            "best_epoch": [r["best_epoch"] for r in runs],
            "parameters": runs[0]["parameters"],
            "seconds_per_epoch": [r["seconds_per_epoch"] for r in runs],
            "images_per_second": [r["images_per_second"] for r in runs],
            "device": runs[0]["provenance"]["device"],
        }
        out[model]["final_test_acc_mean"] = statistics.mean(out[model]["final_test_acc"])
    return out


def paired_final_accuracies(summary: dict) -> tuple[list[int], list[float], list[float]]:
    """Final test accuracies of the CNN and CNN + SE for the seeds both models ran, in seed order."""
    cnn = dict(zip(summary["cnn"]["seeds"], summary["cnn"]["final_test_acc"]))
    se = dict(zip(summary["se"]["seeds"], summary["se"]["final_test_acc"]))
    seeds = sorted(cnn.keys() & se.keys())
    return seeds, [cnn[s] for s in seeds], [se[s] for s in seeds]


def gap_statistics(cnn: list[float], se: list[float], confidence: float = CONFIDENCE) -> dict:
    """The gap SE - CNN paired by seed: mean, sample std, t interval and paired t-test.

    Pairing removes from the noise what both runs of a seed share (data order, augmentation
    draws). The interval uses the t distribution with n - 1 degrees of freedom because the std is
    estimated from the same few pairs. With one pair there is no spread, hence no interval or test:
    those fields stay None instead of NaN, and every table says so in words.
    """
    gaps = [b - a for a, b in zip(cnn, se, strict=True)]
    if not gaps:
        raise ValueError("no seed has runs of both models")
    n, mean = len(gaps), statistics.mean(gaps)
    stats = {"n": n, "confidence": confidence, "gaps": gaps, "mean": mean, "std": None, "ci": None, "p_value": None}
    if n < 2:
        return stats
    std = statistics.stdev(gaps)
    half = float(scipy.stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    stats.update(std=std, ci=[mean - half, mean + half])
    if std > 0:  # identical gaps leave the t statistic undefined
        stats["p_value"] = float(scipy.stats.ttest_rel(se, cnn).pvalue)
    return stats


def class_share(gates: np.ndarray, labels: np.ndarray) -> float:
    """Share of each channel's gate variance explained by the class, averaged over channels.

    Omega squared, (SS_between - (k - 1) MS_within) / (SS_total + MS_within): unlike the plain
    ratio SS_between / SS_total it is not inflated by chance when classes have few images, so
    gates that ignore the class score about 0 whatever the sample size.
    """
    gates = gates.astype(np.float64)
    classes = np.unique(labels)
    k, n = len(classes), len(labels)
    grand = gates.mean(0)
    total = ((gates - grand) ** 2).sum(0)
    between = sum(((labels == c).sum() * (gates[labels == c].mean(0) - grand) ** 2 for c in classes))
    ms_within = (total - between) / max(n - k, 1)
    omega = (between - (k - 1) * ms_within) / np.where(total + ms_within > 0, total + ms_within, 1)
    return float(np.clip(omega.mean(), 0, 1))


def specificity(probe: dict) -> list[float]:
    keys = sorted((k for k in probe if k.startswith("gates_sample_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    labels = probe["labels"][probe["sample_of_gates"]]
    return [class_share(probe[k], labels) for k in keys]
