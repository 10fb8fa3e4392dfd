"""The attention zoo, compared: every attention model of a run against the lesson's CNN, by seed.

    python -m se_attention.zoo --run-dir results/paper --models cnn se eca cbam se_after_pool \
        --seeds 0 1 2 --seed 0 --langs zh en --dpi 120

The lesson's verdict on the zoo is that only an experiment tells which module helps. Each module's
answer here is the paired gap to the CNN (same seed, so the same data order and augmentation
draws): its mean, 95 % t interval and paired t-test, the p-values corrected with Holm's method
for the number of modules compared. Reads runs/<model>/seed<k>/{metrics,history}.json and the
probe of --seed; writes tables/<lang>/zoo*.md, tables/zoo.json and views/figures/<lang>/zoo_*.png.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import atomic  # noqa: E402
from .attention import REGISTRY  # noqa: E402
from .cnn import build_model, multiply_adds  # noqa: E402
from .figures import _overlay, _visible_range, accuracy_by_seed  # noqa: E402
from .fonts import FontError, use_cjk_font  # noqa: E402
from .i18n import Words, languages  # noqa: E402
from .runs import load_histories, load_metrics, load_probes  # noqa: E402
from .stats import CONFIDENCE, class_share, gap_statistics, typical_epoch_speed  # noqa: E402
from .tables import device_words, format_p, interval, literal, mean_std, table  # noqa: E402

ALPHA = 1 - CONFIDENCE  # the family-wise error rate Holm's correction keeps
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def holm(p_values: dict[str, float | None]) -> dict[str, float | None]:
    """Holm-Bonferroni adjusted p-values (None stays None and does not count as a test)."""
    tested = sorted((p, m) for m, p in p_values.items() if p is not None)
    k, running, adjusted = len(tested), 0.0, {m: None for m in p_values}
    for i, (p, m) in enumerate(tested):
        running = max(running, min(1.0, (k - i) * p))
        adjusted[m] = running
    return adjusted


def gate_keys(probe, prefix: str) -> list[str]:
    """``prefix1``, ``prefix2``, ... in block order; none for a model without such arrays (unlike
    figures._gate_keys, which refuses: every zoo figure must also take models without gates)."""
    return sorted((k for k in probe if k.startswith(prefix)), key=lambda k: int(k.rsplit("_", 1)[1]))


GATE_QUANTILES = (0.01, 0.5, 0.99)  # the median and the range of the middle 98 % of a block's gates
# Spearman's rho between spatial gates and Grad-CAM: a difference from the other-image null below this
# is negligible however narrow its interval (a rank correlation of 0.1 is the conventional "small").
NEGLIGIBLE_RHO = 0.1


def gate_quantiles(gates: np.ndarray) -> list[float]:
    """1st percentile, median and 99th percentile of every gate of a block (all images, all channels)."""
    return [float(q) for q in np.quantile(gates.astype(np.float32).ravel(), GATE_QUANTILES)]


def spatial_agreement(probe) -> list[dict]:
    """Per block with spatial gates: mean rho with the image's own Grad-CAM and with another image's,
    and their difference paired by image with its interval (probe.spatial_agreement wrote the rhos)."""
    rows = []
    for key in gate_keys(probe, "spatial_gradcam_rho_"):
        if "_other_" in key:
            continue
        k = int(key.rsplit("_", 1)[1])
        own, other = (np.asarray(probe[f], dtype=np.float64) for f in (key, f"spatial_gradcam_rho_other_{k}"))
        kept = ~(np.isnan(own) | np.isnan(other))  # a constant map has no ranks to correlate
        if kept.sum() < 2:
            continue  # no spread to judge a difference by
        gap = gap_statistics(other[kept].tolist(), own[kept].tolist())
        rows.append({"block": k, "n": int(kept.sum()), "sample": len(own), "rho": float(own[kept].mean()),
                     "rho_other": float(other[kept].mean()), "difference": gap["mean"], "ci": gap["ci"],
                     "p_value": gap["p_value"]})
    return rows


def compare(metrics: dict[str, list[dict]], probes: dict[str, dict], model_config: dict,
            histories: dict[str, list[dict]]) -> dict:
    """Every number of the zoo page: cost, accuracy, the paired gap to the CNN, gate specificity.

    Seconds per epoch come from each run's median epoch (stats.typical_epoch_speed), the runs' mean.
    """
    cnn = {r["seed"]: r["final_test_acc"] for r in metrics["cnn"]}
    base_params, base_madds = metrics["cnn"][0]["parameters"], multiply_adds(build_model("cnn", **model_config))
    modules = {}
    for model, runs in metrics.items():
        acc = [r["final_test_acc"] for r in runs]
        row = {
            "seeds": [r["seed"] for r in runs],
            "final_test_acc": acc,
            "final_test_acc_mean": statistics.mean(acc),
            "final_test_acc_std": statistics.stdev(acc) if len(acc) > 1 else None,
            "parameters_added": runs[0]["parameters"] - base_params,
            "multiply_adds_added": multiply_adds(build_model(model, **model_config)) - base_madds,
            "seconds_per_epoch": statistics.mean(typical_epoch_speed(h)[0] for h in histories[model]),
            # Where each run finished (a run resumed in another session records that session's machine).
            "devices": sorted({r["provenance"]["device"] for r in runs}),
        }
        if model != "cnn":
            seeds = sorted(cnn.keys() & set(row["seeds"]))
            mine = dict(zip(row["seeds"], acc))
            row["gap"] = gap_statistics([cnn[s] for s in seeds], [mine[s] for s in seeds])
            probe = probes.get(model)
            if probe is not None and "sample_of_gates" in probe:
                labels = probe["labels"][probe["sample_of_gates"]]
                row["gate_class_specificity"] = [class_share(probe[k], labels) for k in gate_keys(probe, "gates_sample_")]
                row["gate_quantiles"] = [gate_quantiles(probe[k]) for k in gate_keys(probe, "gates_sample_")]
            if probe is not None and gate_keys(probe, "spatial_gradcam_rho_"):
                row["spatial_agreement"] = spatial_agreement(probe)
        modules[model] = row
    corrected = holm({m: r["gap"]["p_value"] for m, r in modules.items() if m != "cnn"})
    for m, p in corrected.items():
        modules[m]["p_holm"] = p
    return {"confidence": CONFIDENCE, "correction": "holm", "modules": modules}


# ---------------------------------------------------------------------------------------------- words


def verdict(model: str, row: dict, lang: str, compared: int) -> str:
    t = Words(lang, "zoo")
    gap, name = row["gap"], t["model"][model]
    if gap["ci"] is None:
        return t("verdict_one", model=name, n=gap["n"], gap=gap["mean"])
    fields = dict(model=name, n=gap["n"], gap=gap["mean"], lo=gap["ci"][0], hi=gap["ci"][1],
                  p=format_p(row["p_holm"]) if row["p_holm"] is not None else "—")
    if row["p_holm"] is not None and row["p_holm"] < ALPHA:
        return t("verdict_better" if gap["mean"] > 0 else "verdict_worse", **fields)
    if gap["ci"][0] > 0 or gap["ci"][1] < 0:
        # The interval is one module's own; the correction is for looking at `compared` of them at once.
        # Saying "no difference" here would contradict the interval printed beside it.
        return t("verdict_uncorrected_ahead" if gap["mean"] > 0 else "verdict_uncorrected_behind",
                 count=compared, **fields)
    return t("verdict_none", **fields)


def zoo_markdown(result: dict, lang: str) -> str:
    t = Words(lang, "zoo")
    rows = []
    for model, r in result["modules"].items():
        gap = r.get("gap")
        if gap is None:
            gap_cell, p_cell = "—", "—"
        elif gap["ci"] is None:
            gap_cell, p_cell = f"{gap['mean']:+.2f}", "—"
        else:
            gap_cell = f"{gap['mean']:+.2f} {interval(*gap['ci'])}"
            p_cell = format_p(r["p_holm"]) if r["p_holm"] is not None else "—"
        rows.append([t["model"][model], f"{r['parameters_added']:,}", f"{r['multiply_adds_added']:,}",
                     f"{r['seconds_per_epoch']:.0f}", mean_std(r["final_test_acc"]), literal(len(r["seeds"])),
                     gap_cell, p_cell])
    note = t("note", count=len(result["modules"]) - 1)
    machines: dict[tuple[str, ...], list[str]] = {}
    for model, r in result["modules"].items():
        machines.setdefault(tuple(r.get("devices", ())), []).append(t["model"][model])
    if len(machines) > 1:  # seconds from different machines are not a cost comparison
        where = t["list_sep"].join(f"{', '.join(names)}: {' / '.join(device_words(d, lang) for d in devices)}"
                                   for devices, names in machines.items())
        note += " " + t("machines", machines=where)
    return table(t["head"], rows) + "\n" + note + "\n"


def coverage_markdown(models: list[str], lang: str) -> str:
    """Which modules of the registry this page compares, and which are written and tested but not
    trained for it yet: a reader of the page and of the Concepts sections must not mistake one for
    the other."""
    t = Words(lang, "zoo")

    def names(ms: list[str]) -> str:
        return t["name_sep"].join(t["model"][m] for m in ms)

    trained = [m for m in models if m != "cnn"]
    pending = [m for m in REGISTRY if m not in models]
    if not pending:
        return t("coverage_all", trained=names(trained)) + "\n"
    return t("coverage", trained=names(trained), pending=names(pending)) + "\n"


def verdicts_markdown(result: dict, lang: str) -> str:
    others = {m: r for m, r in result["modules"].items() if m != "cnn"}
    compared = sum(r["p_holm"] is not None for r in others.values())  # what Holm's correction counted
    return "\n".join(f"- {verdict(m, r, lang, compared)}" for m, r in others.items()) + "\n"


def per_block_table(rows: dict[str, list[str]], lang: str) -> str:
    """One row per module, one column per block, from each module's cells in block order."""
    t = Words(lang, "zoo")
    blocks = max(len(cells) for cells in rows.values())
    return table([t["spec_model"], *(t("spec_block", k=k) for k in range(1, blocks + 1))],
                 [[t["model"][m], *cells] for m, cells in rows.items()]) + "\n"


def specificity_markdown(result: dict, lang: str) -> str:
    rows = {m: [f"{v:.2f}" for v in r["gate_class_specificity"]]
            for m, r in result["modules"].items() if r.get("gate_class_specificity")}
    return per_block_table(rows, lang) if rows else Words(lang, "zoo")["no_gates"] + "\n"


def gate_range_markdown(result: dict, lang: str) -> str:
    """Per module and block: the median gate (the 1st-99th percentile range), and for every module
    whose gates stay below one half in every block, what that says about its excitation."""
    t = Words(lang, "zoo")
    ranged = {m: r["gate_quantiles"] for m, r in result["modules"].items() if r.get("gate_quantiles")}
    if not ranged:
        return t["no_gates"] + "\n"
    text = per_block_table({m: [f"{mid:.2f} ({lo:.2f}–{hi:.2f})" for lo, mid, hi in q] for m, q in ranged.items()},
                           lang)
    below = [t("below_half", model=t["model"][m], hi=max(hi for _, _, hi in q))
             for m, q in ranged.items() if all(hi < 0.5 for _, _, hi in q)]
    return text + ("\n" + " ".join(below) + "\n" if below else "")


def spatial_agreement_markdown(result: dict, seed: int, lang: str) -> str:
    """Per module with spatial attention and per block: rho with the image's own Grad-CAM against
    another image's, the difference with its interval, and what that says."""
    t = Words(lang, "zoo")
    measured = {m: r["spatial_agreement"] for m, r in result["modules"].items() if r.get("spatial_agreement")}
    if not measured:
        return t["no_spatial_agreement"] + "\n"
    def r2(v: float) -> float:  # rounded as printed, so that -0.004 reads 0.00, not -0.00
        return round(v, 2) + 0.0

    numbers = sorted({b["block"] for blocks in measured.values() for b in blocks})
    cells = {m: {b["block"]: t("agreement_cell", rho=r2(b["rho"]), other=r2(b["rho_other"]), diff=r2(b["difference"]),
                               ci=interval(*b["ci"]) if b["ci"] else "—") for b in blocks}
             for m, blocks in measured.items()}
    verdicts = []
    for m, blocks in measured.items():
        # Follows: a difference that matters and an interval above 0. Does not: every interval ends
        # below what would matter. Anything else (a wide interval) is not settled by this sample.
        follows = [b for b in blocks if b["ci"] and b["ci"][0] > 0 and b["difference"] >= NEGLIGIBLE_RHO]
        top = max(blocks, key=lambda b: b["ci"][1] if b["ci"] else b["difference"])
        fields = dict(model=t["model"][m], diff=r2(top["difference"]), k=top["block"],
                      ci=interval(*top["ci"]) if top["ci"] else "—", small=NEGLIGIBLE_RHO)
        if follows:
            verdicts.append(t("agreement_follows", model=t["model"][m],
                              blocks=t["name_sep"].join(literal(b["block"]) for b in follows)))
        elif all(b["ci"] and b["ci"][1] < NEGLIGIBLE_RHO for b in blocks):
            verdicts.append(t("agreement_not", **fields))
        else:
            verdicts.append(t("agreement_unclear", **fields))
    n = min(b["n"] for blocks in measured.values() for b in blocks)
    sample = max(b.get("sample", b["n"]) for blocks in measured.values() for b in blocks)
    rows = [[t["model"][m], *(c.get(k, "—") for k in numbers)] for m, c in cells.items()]
    return (table([t["spec_model"], *(t("spec_block", k=k) for k in numbers)], rows) + "\n"
            + t("agreement_note" if n == sample else "agreement_note_flat", n=f"{n:,}", sample=f"{sample:,}", seed=seed,
                small=NEGLIGIBLE_RHO) + " " + " ".join(verdicts) + "\n")


# -------------------------------------------------------------------------------------------- figures


def colors(models: list[str]) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def plot_forest(result: dict, lang: str) -> plt.Figure:
    """Each module's gap to the CNN: the seeds as dots, the mean, and its 95 % interval."""
    t = Words(lang, "zoo")
    models = [m for m in result["modules"] if m != "cnn"]
    fig, ax = plt.subplots(figsize=(7.5, 0.8 + 0.7 * len(models)), layout="constrained")
    for y, m in enumerate(reversed(models)):
        gap = result["modules"][m]["gap"]
        ax.scatter(gap["gaps"], [y] * len(gap["gaps"]), color="0.6", s=14, zorder=2, label=t["seed_dot"] if y == 0 else None)
        if gap["ci"] is not None:
            ax.plot(gap["ci"], [y, y], color="k", lw=2, zorder=3)
        ax.scatter([gap["mean"]], [y], color="k", marker="D", s=36, zorder=4, label=t["mean_dot"] if y == 0 else None)
    ax.axvline(0, color="#d62728", lw=1, ls="--")
    ax.set_yticks(range(len(models)), [t["model"][m] for m in reversed(models)])
    ax.set(xlabel=t["forest_x"], title=t["forest_title"], ylim=(-0.6, len(models) - 0.4))
    ax.grid(axis="x", alpha=0.3)
    # Outside the axes: inside, "best" still lands on an interval's end when every corner has one.
    fig.legend(fontsize=8, loc="outside right upper")
    return fig


def plot_curves(runs: dict[str, list[dict]], lang: str) -> plt.Figure:
    """Test accuracy per epoch of every model: mean over seeds, min-max band; right, the last third."""
    t = Words(lang, "zoo")
    acc = {m: accuracy_by_seed(h) for m, h in runs.items()}
    col = colors(list(runs))
    last = max(a.shape[1] for a in acc.values())
    zoom_from = max(1, last - max(last // 3, 5) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    for m, a in acc.items():
        epochs = np.arange(1, a.shape[1] + 1)
        for ax in axes:
            ax.plot(epochs, a.mean(0), color=col[m], lw=1.5, label=t("band", model=t["model"][m], n=len(a)))
            if len(a) > 1:
                ax.fill_between(epochs, a.min(0), a.max(0), color=col[m], alpha=0.15, lw=0)
    axes[0].set(xlabel=t["epoch"], ylabel=t["accuracy"], title=t["curves_title"])
    axes[1].set(xlabel=t["epoch"], ylabel=t["accuracy"], title=t("curves_zoom", k=last - zoom_from + 1),
                xlim=(zoom_from - 0.5, last + 0.5), ylim=_visible_range(acc.values(), zoom_from))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    return fig


def with_keys(probes: dict[str, dict], prefix: str) -> tuple[list[str], int]:
    """The models whose probe has per-block arrays named ``prefix<k>``, and the most blocks any has."""
    models = [m for m, p in probes.items() if gate_keys(p, prefix)]
    return models, max((len(gate_keys(probes[m], prefix)) for m in models), default=0)


def plot_gate_maps(probes: dict[str, dict], lang: str, seed: int) -> plt.Figure:
    """Mean gate per class (rows) and channel (columns), per module and block (SENet Fig. 6 style)."""
    t = Words(lang, "zoo")
    models, blocks = with_keys(probes, "gates_class_mean_")
    if not models:
        return _message(t["no_gates"])
    fig, axes = plt.subplots(len(models), blocks, figsize=(4 * blocks, 2.2 * len(models) + 0.6),
                             layout="constrained", squeeze=False)
    for i, m in enumerate(models):
        for j, key in enumerate(gate_keys(probes[m], "gates_class_mean_")):
            ax = axes[i, j]
            im = ax.imshow(probes[m][key], aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            ax.set_yticks(range(10), t["classes"], fontsize=6)
            ax.set_title(t("map_title", model=t["model"][m], k=j + 1, seed=seed), fontsize=9)
            ax.set_xlabel(t["channel"], fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6, label=t["gate"])
    return fig


def plot_gate_distributions(probes: dict[str, dict], lang: str, seed: int) -> plt.Figure:
    """How the gates of each block spread, per module (all channels of the sampled test images)."""
    t = Words(lang, "zoo")
    models, blocks = with_keys(probes, "gates_sample_")
    if not models:
        return _message(t["no_gates"])
    col = colors(list(probes))
    fig, axes = plt.subplots(1, blocks, figsize=(4.2 * blocks, 3.6), layout="constrained", sharey=True, squeeze=False)
    bins = np.linspace(0, 1, 41)
    for j in range(blocks):
        ax = axes[0, j]
        for m in models:
            keys = gate_keys(probes[m], "gates_sample_")
            if j < len(keys):
                ax.hist(probes[m][keys[j]].astype(np.float32).ravel(), bins=bins, density=True, histtype="step",
                        lw=1.4, color=col[m], label=t["model"][m])
        ax.set(title=t("dist_panel", k=j + 1), xlabel=t["gate"])
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(t["density"])
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(t("dist_title", seed=seed))  # once for all panels: per panel it ran into the next title
    return fig


def plot_spatial(probes: dict[str, dict], lang: str, seed: int) -> plt.Figure:
    """Grad-CAM of every attention model on the sample images, and spatial gates where a module has them."""
    t = Words(lang, "zoo")
    first = next(iter(probes.values()))
    images, n = first["sample_images"], len(first["sample_images"])
    rows = []  # (label, maps per image)
    for m, p in probes.items():
        spatial = gate_keys(p, "sample_spatial_")
        if spatial:
            maps = []
            for smap in p[spatial[-1]]:  # the last block's map, nearest-neighbour to 32 x 32
                up = np.kron(smap, np.ones((32 // smap.shape[0], 32 // smap.shape[1])))
                maps.append((up - up.min()) / (np.ptp(up) or 1.0))
            rows.append((t("spatial_row", model=t["model"][m], k=spatial[-1].rsplit("_", 1)[1]), maps))
        rows.append((t("gradcam_row", model=t["model"][m]), p["gradcam_true"]))
    fig, axes = plt.subplots(1 + len(rows), n, figsize=(1.6 * n, 1.75 * (1 + len(rows))), layout="constrained",
                             squeeze=False)
    for c in range(n):
        axes[0, c].imshow(images[c])
        axes[0, c].set_title(t["classes"][int(first["sample_labels"][c])], fontsize=8)
        for r, (_, maps) in enumerate(rows, start=1):
            axes[r, c].imshow(_overlay(images[c], maps[c]))
    for r, (label, _) in enumerate(rows, start=1):
        axes[r, 0].set_ylabel(label, fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(t("spatial_title", seed=seed), fontsize=10)
    return fig


def _message(words: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 1))
    ax.text(0.5, 0.5, words, ha="center", va="center")
    ax.axis("off")
    return fig


# ------------------------------------------------------------------------------------------- the step


def write_all(run_dir: Path, models: list[str], seeds: list[int], seed: int, langs: list[str], dpi: int) -> list[Path]:
    if "cnn" not in models or len(models) < 2:
        raise ValueError(f"the zoo compares attention models with the CNN: expected cnn and another model, found {models}")
    metrics = load_metrics(run_dir, models, seeds)
    recipe = metrics["cnn"][0]["provenance"]["recipe"]
    probes = load_probes(run_dir, [m for m in models if m != "cnn"], seed)
    histories = load_histories(run_dir, models, seeds)
    result = compare(metrics, probes, recipe["model"], histories)
    written = [run_dir / "tables" / "zoo.json"]
    atomic.write_json(written[0], {**result, "seeds": seeds, "probe_seed": seed})
    for lang in langs:
        tables = {"zoo.md": zoo_markdown(result, lang), "zoo_verdicts.md": verdicts_markdown(result, lang),
                  "zoo_specificity.md": specificity_markdown(result, lang),
                  "zoo_gate_range.md": gate_range_markdown(result, lang),
                  "zoo_coverage.md": coverage_markdown(models, lang),
                  "zoo_spatial_agreement.md": spatial_agreement_markdown(result, seed, lang)}
        for name, text in tables.items():
            atomic.write_text(run_dir / "tables" / lang / name, text)
            written.append(run_dir / "tables" / lang / name)
        if lang == "zh":
            use_cjk_font()
        figures = {"zoo_forest": plot_forest(result, lang), "zoo_curves": plot_curves(histories, lang),
                   "zoo_gates": plot_gate_maps(probes, lang, seed),
                   "zoo_gate_distribution": plot_gate_distributions(probes, lang, seed),
                   "zoo_spatial": plot_spatial(probes, lang, seed)}
        written += atomic.save_figures(figures, run_dir / "views" / "figures" / lang, ".png", dpi=dpi,
                                       bbox_inches="tight")
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.zoo", description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--seed", type=int, required=True, help="the seed whose probes the gate figures show")
    p.add_argument("--langs", nargs="+", default=languages(), choices=languages())
    p.add_argument("--dpi", type=int, default=120)
    args = p.parse_args(argv)
    try:
        for path in write_all(args.run_dir, args.models, args.seeds, args.seed, args.langs, args.dpi):
            print(path)
    except (FontError, OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
