"""The statistics behind the tables: per-model summaries, the paired SE - CNN gap, gate specificity.

Numbers only; tables.py turns them into words.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import scipy.stats


CONFIDENCE = 0.95  # level of the confidence interval of the SE - CNN gap


def typical_epoch_speed(history: dict) -> tuple[float, float]:
    """Seconds per epoch and images per second of a run's median epoch.

    The median, not metrics.json's mean: a run that was paused (a session ended, kill -STOP) or
    shared the machine with other work for a while has a few long epochs that say nothing about
    what its model costs.
    """
    epochs = history["epochs"]
    return (statistics.median(e["train_seconds"] for e in epochs),
            statistics.median(e["images_per_second"] for e in epochs))


def summarize(metrics: dict[str, list[dict]], histories: dict[str, list[dict]] | None = None) -> dict:
    """Per model, its runs' numbers side by side; speeds from the median epoch when the histories are given."""
    out = {}
    for model, runs in metrics.items():
        speeds = ([typical_epoch_speed(h) for h in histories[model]] if histories is not None
                  else [(r["seconds_per_epoch"], r["images_per_second"]) for r in runs])
        out[model] = {
            "seeds": [r["seed"] for r in runs],
            "epochs": sorted({r["epochs"] for r in runs}),
            "final_test_acc": [r["final_test_acc"] for r in runs],
            "best_test_acc": [r["best_test_acc"] for r in runs],
            "best_epoch": [r["best_epoch"] for r in runs],
            "parameters": runs[0]["parameters"],
            "seconds_per_epoch": [seconds for seconds, _ in speeds],
            "images_per_second": [rate for _, rate in speeds],
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


def gate_activation_correlation(probe: dict) -> list[dict]:
    """Per SE block, the spread over test images of the per-image Pearson r between gate and squeeze input.

    The probe computes one r per image and block, across channels: does a channel that is more
    active on this image (higher mean over H, W before the attention) get a higher gate? Images
    whose r is undefined (a constant row) are left out and counted.
    """
    keys = sorted((k for k in probe if k.startswith("gate_activation_r_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    out = []
    for key in keys:
        r = np.asarray(probe[key], dtype=np.float64)
        valid = r[np.isfinite(r)]
        q1, median, q3 = (float(v) for v in np.percentile(valid, [25, 50, 75])) if len(valid) else (math.nan,) * 3
        out.append({"block": int(key.rsplit("_", 1)[1]), "images": int(len(valid)), "undefined": int(len(r) - len(valid)),
                    "median": median, "q1": q1, "q3": q3,
                    "share_negative": float((valid < 0).mean()) if len(valid) else math.nan})
    return out


def schedule_summary(histories: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Per model and run: the epoch first trained at a lower rate, the rate drops, the best and last epoch,
    and whether the last epoch reached the best accuracy (ties count: then the best epoch is the earlier).

    ``histories`` maps a model to its runs' history.json contents, each with a "seed" added. Each
    epoch record holds the rate it was trained with (the scheduler steps after the epoch).
    """
    out = {}
    for model, runs in histories.items():
        rows = []
        for h in runs:
            epochs = h["epochs"]
            lrs = [r["lr"] for r in epochs]
            acc = [r["test_acc"] for r in epochs]
            first = next((r["epoch"] for r in epochs if r["lr"] < lrs[0]), None)
            best = epochs[int(np.argmax(acc))]["epoch"]  # the first epoch with the highest accuracy
            rows.append({"seed": h["seed"], "first_lower_lr_epoch": first, "lr_start": lrs[0], "lr_end": lrs[-1],
                         "drops": sum(b < a for a, b in zip(lrs, lrs[1:])), "best_epoch": best,
                         # A last epoch tied with an earlier best still reached the best accuracy.
                         "last_epoch": epochs[-1]["epoch"], "best_is_last": acc[-1] == max(acc)})
        out[model] = rows
    return out
