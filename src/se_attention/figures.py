"""Draw every figure of a run, in each language, from saved results only (no dataset, no GPU).

    python -m se_attention.figures --run-dir results/paper --models cnn se --seed 0 --seeds 0 1 2 --lang zh \
        --channels-shown 8 --dpi 120

Reads runs/<model>/seed<k>/history.json and probe.npz under the run folder and
writes figures/<lang>/*.png. All figures show --seed's run except seed_band, which shows every seed
in --seeds. Each function takes plain arrays and returns a matplotlib figure,
so tests can call them on tiny synthetic inputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import atomic  # noqa: E402
from .fonts import FontError, use_cjk_font  # noqa: E402
from .i18n import Words, languages  # noqa: E402
from .runs import load_histories, load_probes  # noqa: E402

COLORS = {"cnn": "#1f77b4", "se": "#d62728"}
LINE_CLASSES = (0, 2, 3, 8)  # airplane, bird, cat, ship: two vehicles, two animals


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(x)))
    return np.convolve(x, np.ones(window) / window, mode="valid")


def plot_iteration_loss(histories: dict[str, dict], lang: str) -> plt.Figure:
    t = Words(lang, "figures")
    fig, ax = plt.subplots(figsize=(10, 4))
    for model, h in histories.items():
        loss = np.asarray(h["iter_loss"])
        steps = np.arange(1, len(loss) + 1)
        ax.plot(steps, loss, color=COLORS[model], alpha=0.2, lw=0.5)
        window = max(1, len(loss) // 100)
        ma = moving_average(loss, window)
        ax.plot(steps[window - 1 :], ma, color=COLORS[model], lw=1.5, label=f"{t['model'][model]} ({t['smoothed']})")
    ax.set(xlabel=t["iteration"], ylabel=t["loss"], title=t["iter_title"])
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_epoch_curves(histories: dict[str, dict], lang: str) -> plt.Figure:
    """Accuracy and loss per epoch, train and test, and the learning rate each epoch was trained with."""
    t = Words(lang, "figures")
    fig, (ax_acc, ax_loss, ax_lr) = plt.subplots(1, 3, figsize=(16, 4.2), gridspec_kw={"width_ratios": [1, 1, 0.7]})
    for model, h in histories.items():
        ep = [r["epoch"] for r in h["epochs"]]
        name = t["model"][model]
        for split, style in (("train", "--"), ("test", "-")):
            ax_acc.plot(ep, [r[f"{split}_acc"] for r in h["epochs"]], style, color=COLORS[model], marker="o",
                        ms=3, label=f"{name} {t[split]}")
            ax_loss.plot(ep, [r[f"{split}_loss"] for r in h["epochs"]], style, color=COLORS[model], marker="o",
                         ms=3, label=f"{name} {t[split]}")
        # The scheduler watches each run's own test loss, so each model steps at its own epochs.
        ax_lr.step(ep, [r["lr"] for r in h["epochs"]], where="mid", color=COLORS[model], label=name)
    ax_acc.set(xlabel=t["epoch"], ylabel=t["accuracy"], title=t["acc_title"])
    ax_loss.set(xlabel=t["epoch"], ylabel=t["loss"], title=t["loss_title"])
    ax_lr.set(xlabel=t["epoch"], ylabel=t["lr"], title=t["lr_title"], yscale="log")
    rates = sorted({r["lr"] for h in histories.values() for r in h["epochs"]})
    ax_lr.set_yticks(rates, [f"{v:g}" for v in rates])
    ax_lr.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    for ax in (ax_acc, ax_loss, ax_lr):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def accuracy_by_seed(histories: list[dict]) -> np.ndarray:
    """Test accuracy per epoch, one row per seed, cut to the shortest run so the rows line up."""
    epochs = min(len(h["epochs"]) for h in histories)
    return np.array([[r["test_acc"] for r in h["epochs"][:epochs]] for h in histories], dtype=float)


def plot_seed_band(runs: dict[str, list[dict]], lang: str) -> plt.Figure:
    """Mean test accuracy per epoch over seeds, with the min-max band; left all epochs, right the last third.

    The band is the range, not a confidence interval: with the few seeds a study like this can
    afford, min and max are what a reader can check against the per-seed table. The zoomed panel
    makes a gap of a point or less visible, which the scale of the whole run flattens.
    """
    t = Words(lang, "figures")
    acc = {model: accuracy_by_seed(histories) for model, histories in runs.items()}
    last = max(a.shape[1] for a in acc.values())
    zoom_from = max(1, last - max(last // 3, 5) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    for model, a in acc.items():
        epochs = np.arange(1, a.shape[1] + 1)
        name = t["model"][model]
        label = t("band", count=len(a), model=name)
        for ax in axes:
            ax.plot(epochs, a.mean(0), color=COLORS[model], lw=1.6, label=label)
            if len(a) > 1:
                ax.fill_between(epochs, a.min(0), a.max(0), color=COLORS[model], alpha=0.2, lw=0)
    axes[0].set(xlabel=t["epoch"], ylabel=t["accuracy"], title=t["band_title"])
    axes[1].set(xlabel=t["epoch"], ylabel=t["accuracy"], title=t("band_zoom", k=last - zoom_from + 1),
                xlim=(zoom_from - 0.5, last + 0.5), ylim=_visible_range(acc.values(), zoom_from))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def _visible_range(accuracies, first_epoch: int, margin: float = 0.3) -> tuple[float, float]:
    """The accuracy range of all seeds and models from epoch ``first_epoch`` on, with a small margin."""
    tails = [a[:, first_epoch - 1 :] for a in accuracies if a.shape[1] >= first_epoch]
    return min(float(a.min()) for a in tails) - margin, max(float(a.max()) for a in tails) + margin


def _channel_grid(maps: np.ndarray, channels: int) -> np.ndarray:
    """Tile the first ``channels`` maps (C x H x W) into a 2-row mosaic, each map scaled to [0, 1]."""
    maps = maps[:channels].astype(np.float32)
    lo = maps.min(axis=(1, 2), keepdims=True)
    hi = maps.max(axis=(1, 2), keepdims=True)
    maps = (maps - lo) / np.where(hi > lo, hi - lo, 1)
    rows = 2 if channels > 1 else 1
    cols = int(np.ceil(len(maps) / rows))
    h, w = maps.shape[1:]
    grid = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan, dtype=np.float32)
    for i, m in enumerate(maps):
        r, c = divmod(i, cols)
        grid[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = m
    return grid


def plot_feature_maps(probes: dict[str, dict], lang: str, channels: int, images: int = 3) -> plt.Figure:
    """Rows: (test image, model); columns: the input, then conv1..conv3 outputs as the lesson hooks them.

    Each tile is numbered with its channel. The numbers say which map is which within one network
    only: two separately trained networks share no channel order.
    """
    t = Words(lang, "figures")
    models = list(probes)
    first = probes[models[0]]
    n_img = min(images, len(first["sample_index"]))
    blocks = sorted(int(k[4:]) for k in first if k.startswith("conv") and k[4:].isdigit())
    fig, axes = plt.subplots(n_img * len(models), 1 + len(blocks), figsize=(3.2 * (1 + len(blocks)) + 0.8, 1.9 * n_img * len(models)),
                             squeeze=False, gridspec_kw={"width_ratios": [0.45] + [1] * len(blocks)}, layout="constrained")
    for i in range(n_img):
        for j, model in enumerate(models):
            p = probes[model]
            row = axes[i * len(models) + j]
            label, pred = int(p["sample_labels"][i]), int(p["sample_preds"][i])
            row[0].imshow(p["sample_images"][i])
            row[0].set_title(f"{t['model'][model]}\n{t['true']}: {t['classes'][label]}\n{t['pred']}: {t['classes'][pred]}",
                             fontsize=8)
            for b, ax in zip(blocks, row[1:]):
                maps = p[f"conv{b}"][i]
                im = ax.imshow(_channel_grid(maps, channels), cmap="viridis", vmin=0, vmax=1)
                side = maps.shape[-1]
                cols = int(np.ceil(min(channels, len(maps)) / (2 if channels > 1 else 1)))
                for ch in range(min(channels, len(maps))):
                    r, c = divmod(ch, cols)
                    ax.text(c * (side + 1) + 0.02 * side, r * (side + 1) + 0.02 * side, str(ch), color="white",
                            fontsize=6, ha="left", va="top", bbox={"fc": "black", "alpha": 0.5, "pad": 0.5, "lw": 0})
                if i == 0 and j == 0:
                    ax.set_title(f"conv{b}", fontsize=10)
            for ax in row:
                ax.axis("off")
    fig.colorbar(im, ax=axes[:, 1:].ravel().tolist(), label=t["fm_scale"], shrink=0.5, pad=0.01)
    fig.suptitle(t("fm_title", last=channels - 1) + "\n" + t["fm_note"], fontsize=10)
    return fig


def plot_channel_attention(probe: dict, lang: str) -> plt.Figure:
    """Mean SE gate per class (rows) and channel (columns), one panel per SE block.

    Columns are sorted by the gate's mean over all classes, so a class-specific channel shows as
    a column that breaks the gradient; the CIFAR-10 counterpart of the SENet paper's Fig. 6.
    """
    t = Words(lang, "figures")
    keys = _gate_keys(probe, "gates_class_mean_")
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.8), squeeze=False, layout="constrained",
                             gridspec_kw={"width_ratios": [probe[k].shape[1] ** 0.5 for k in keys]})
    lo = min(float(probe[k].min()) for k in keys)
    hi = max(float(probe[k].max()) for k in keys)
    for ax, key in zip(axes[0], keys):
        gates = probe[key]
        order = np.argsort(gates.mean(axis=0))
        # One colour scale for all blocks, spanning the gates that occur: differences stay visible.
        im = ax.imshow(gates[:, order], aspect="auto", cmap="magma", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_yticks(range(len(t["classes"])), t["classes"], fontsize=8)
        ax.set_xlabel(t["channels_sorted"], fontsize=8)
        ax.set_title(f"{t['block']} {key.rsplit('_', 1)[1]} (C = {gates.shape[1]})")
    fig.colorbar(im, ax=axes[0].tolist(), label=t["gate"], shrink=0.9)
    fig.suptitle(t["heat_title"])
    return fig


def _gate_keys(probe: dict, prefix: str) -> list[str]:
    keys = sorted((k for k in probe if k.startswith(prefix)), key=lambda k: int(k.rsplit("_", 1)[1]))
    if not keys:
        raise ValueError("the probe holds no SE gates: this figure needs an SE model")
    return keys


def plot_se_rescaling(probe: dict, lang: str, image: int = 0, per_side: int = 4) -> plt.Figure:
    """Before/after SE maps of the most boosted and most suppressed channels, per block."""
    t = Words(lang, "figures")
    blocks = [int(k.rsplit("_", 1)[1]) for k in _gate_keys(probe, "sample_gates_")]
    cols = 2 * per_side
    fig = plt.figure(figsize=(1.35 * cols + 2.2, 2.9 * len(blocks)), layout="constrained")
    grid = fig.add_gridspec(2 * len(blocks), cols + 1, width_ratios=[1.6] + [1] * cols)
    ax = fig.add_subplot(grid[0:2, 0])
    ax.imshow(probe["sample_images"][image])
    ax.axis("off")
    label = t["classes"][int(probe["sample_labels"][image])]
    for row, b in enumerate(blocks):
        gates = probe[f"sample_gates_{b}"][image]
        order = np.argsort(gates)[::-1]
        chosen = np.concatenate([order[:per_side], order[-per_side:]])
        before, after = probe[f"act{b}"][image].astype(np.float32), probe[f"se{b}"][image].astype(np.float32)
        for j, ch in enumerate(chosen):
            vmax = max(float(before[ch].max()), 1e-6)
            for k, (maps, name) in enumerate(((before, t["before_se"]), (after, t["after_se"]))):
                a = fig.add_subplot(grid[2 * row + k, j + 1])
                a.imshow(maps[ch], cmap="viridis", vmin=0, vmax=vmax)
                a.set_xticks([])
                a.set_yticks([])
                if k == 0:
                    a.set_title(f"#{ch} s={gates[ch]:.2f}", fontsize=7)
                if j == 0:
                    a.set_ylabel(f"{t['block']} {b}\n{name}", fontsize=7)
    fig.suptitle(t("rescale_title", label=label), fontsize=9)
    return fig


def plot_excitation_lines(probe: dict, lang: str, classes=LINE_CLASSES) -> plt.Figure:
    """Mean gate per channel (x: channel index) for a few classes, one panel per SE block."""
    t = Words(lang, "figures")
    keys = _gate_keys(probe, "gates_class_mean_")
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.4), squeeze=False, layout="constrained")
    counts = np.bincount(probe["labels"], minlength=10)
    for ax, key in zip(axes[0], keys):
        gates = probe[key]
        overall = (gates * counts[:, None]).sum(0) / max(counts.sum(), 1)
        ax.plot(overall, color="black", lw=1.2, label=t["all_classes"])
        for c in classes:
            ax.plot(gates[c], lw=0.9, alpha=0.85, label=t["classes"][c])
        ax.set(title=f"{t['block']} {key.rsplit('_', 1)[1]}", xlabel=t["channel_index"], ylabel=t["gate"])
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(t["lines_title"], fontsize=10)
    return fig


def _overlay(image: np.ndarray, cam: np.ndarray) -> np.ndarray:
    heat = plt.get_cmap("jet")(cam)[..., :3]
    return np.clip(0.5 * image / 255.0 + 0.5 * heat, 0, 1)


def plot_gradcam(probes: dict[str, dict], lang: str) -> plt.Figure:
    """Rows: test images; columns: the image, then each model's Grad-CAM for its predicted class."""
    t = Words(lang, "figures")
    models = list(probes)
    first = probes[models[0]]
    n = len(first["sample_index"])
    fig, axes = plt.subplots(n, 1 + len(models), figsize=(2.2 * (1 + len(models)) + 0.8, 2.3 * n), squeeze=False,
                             layout="constrained")
    for i in range(n):
        axes[i][0].imshow(first["sample_images"][i])
        axes[i][0].set_title(f"{t['true']}: {t['classes'][int(first['sample_labels'][i])]}", fontsize=8)
        for j, model in enumerate(models, start=1):
            p = probes[model]
            axes[i][j].imshow(_overlay(p["sample_images"][i], p["gradcam_pred"][i]))
            axes[i][j].set_title(f"{t['model'][model]}\n{t['pred']}: {t['classes'][int(p['sample_preds'][i])]}",
                                 fontsize=8)
        for ax in axes[i]:
            ax.axis("off")
    _cam_colorbar(fig, axes, t)
    fig.suptitle(t["gradcam_title"], fontsize=9)
    return fig


def _cam_colorbar(fig: plt.Figure, axes, t: Words) -> None:
    mappable = plt.cm.ScalarMappable(cmap="jet", norm=matplotlib.colors.Normalize(0, 1))
    fig.colorbar(mappable, ax=np.asarray(axes).ravel().tolist(), label=t["cam_scale"], shrink=0.4)


def plot_gradcam_misclassified(probes: dict[str, dict], lang: str) -> plt.Figure:
    """Per model, a few test images it got wrong: the image, Grad-CAM for the wrong and for the true class.

    Each model has its own errors, so the images differ between the models' rows.
    """
    t = Words(lang, "figures")
    models = [m for m, p in probes.items() if len(p.get("misclassified_index", ())) and "misclassified_gradcam_true" in p]
    n = max((len(probes[m]["misclassified_index"]) for m in models), default=0)
    fig, axes = plt.subplots(len(models) * 3, max(n, 1), figsize=(2.1 * max(n, 1) + 0.8, 2.2 * 3 * max(len(models), 1)),
                             squeeze=False, layout="constrained")
    for j, model in enumerate(models):
        p = probes[model]
        for i in range(n):
            col = [axes[3 * j + r][i] for r in range(3)]
            for ax in col:
                ax.axis("off")
            if i >= len(p["misclassified_index"]):
                continue
            image, label, pred = p["misclassified_images"][i], int(p["misclassified_labels"][i]), int(p["misclassified_preds"][i])
            col[0].imshow(image)
            col[0].set_title(f"{t['model'][model]} #{int(p['misclassified_index'][i])}\n{t['true']}: "
                             f"{t['classes'][label]}, {t['pred']}: {t['classes'][pred]}", fontsize=7)
            col[1].imshow(_overlay(image, p["misclassified_gradcam_pred"][i]))
            col[1].set_title(t("cam_for_pred", label=t["classes"][pred]), fontsize=7)
            col[2].imshow(_overlay(image, p["misclassified_gradcam_true"][i]))
            col[2].set_title(t("cam_for_true", label=t["classes"][label]), fontsize=7)
    _cam_colorbar(fig, axes, t)
    fig.suptitle(t["miss_title"], fontsize=9)
    return fig


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    return 100.0 * np.diag(confusion) / np.maximum(confusion.sum(1), 1)


def plot_per_class_accuracy(probes: dict[str, dict], lang: str) -> plt.Figure:
    t = Words(lang, "figures")
    fig, ax = plt.subplots(figsize=(10, 3.8), layout="constrained")
    width = 0.8 / len(probes)
    for j, (model, p) in enumerate(probes.items()):
        acc = per_class_accuracy(p["confusion"])
        xs = np.arange(10) + (j - (len(probes) - 1) / 2) * width
        bars = ax.bar(xs, acc, width, color=COLORS[model], label=t["model"][model])
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(range(10), t["classes"])
    ax.set(ylabel=t["accuracy"], title=t["per_class_title"], ylim=(0, 105))
    ax.legend()
    return fig


def plot_confusion(probes: dict[str, dict], lang: str) -> plt.Figure:
    t = Words(lang, "figures")
    fig, axes = plt.subplots(1, len(probes), figsize=(6.2 * len(probes), 5.4), squeeze=False, layout="constrained")
    for ax, (model, p) in zip(axes[0], probes.items()):
        cm = p["confusion"].astype(float)
        cm = 100.0 * cm / np.maximum(cm.sum(1, keepdims=True), 1)
        im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=100)
        for (r, c), v in np.ndenumerate(cm):
            ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=6.5, color="white" if v > 50 else "black")
        ax.set_xticks(range(10), t["classes"], rotation=60, fontsize=7)
        ax.set_yticks(range(10), t["classes"], fontsize=7)
        ax.set(xlabel=t["pred_class"], ylabel=t["true_class"], title=t["model"][model])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    fig.suptitle(t["confusion_title"])
    return fig


def plot_gate_distribution(probe: dict, lang: str) -> plt.Figure:
    t = Words(lang, "figures")
    keys = _gate_keys(probe, "gates_sample_")
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False, sharey=True,
                             layout="constrained")
    bins = np.linspace(0, 1, 41)
    for ax, key in zip(axes[0], keys):
        gates = probe[key].astype(np.float32).ravel()
        ax.hist(gates, bins=bins, weights=np.full(gates.shape, 1 / max(len(gates), 1)), color=COLORS["se"])
        for v in (0.0, 0.5, 1.0):
            ax.axvline(v, color="grey", lw=0.6, ls=":")
        ax.set(title=f"{t['block']} {key.rsplit('_', 1)[1]}", xlabel=t["gate_value"])  # single gates, not means
    axes[0][0].set_ylabel(t["count_share"])
    fig.suptitle(t("gate_hist_title", n=len(probe[keys[0]])), fontsize=10)
    return fig


# ---------------------------------------------------------------------------------------------

# Figures that show no single run: every other figure is labelled with the seed it shows.
MULTI_SEED = ("seed_band.png",)


def label_seed(fig: plt.Figure, seed: int, lang: str) -> None:
    """Write the run's seed above the figure's top-left corner, clear of titles in any layout."""
    fig.text(0.0, 1.0, Words(lang, "figures")("seed_label", seed=seed), ha="left", va="bottom", fontsize=9,
             color="#555", transform=fig.transFigure)


def draw_all(run_dir: Path, models: list[str], seed: int, lang: str, channels: int, dpi: int,
             seeds: list[int] | None = None) -> list[Path]:
    """Every figure of seed ``seed``'s run, plus seed_band over ``seeds`` (default: that seed alone)."""
    if lang == "zh":
        use_cjk_font()
    histories = {m: runs[0] for m, runs in load_histories(run_dir, models, [seed]).items()}
    probes = load_probes(run_dir, models, seed)
    out_dir = run_dir / "views" / "figures" / lang  # views/ sorts after runs/: see rules/figures.smk
    figures = {
        "iteration_loss.png": plot_iteration_loss(histories, lang),
        "epoch_curves.png": plot_epoch_curves(histories, lang),
        "feature_maps.png": plot_feature_maps(probes, lang, channels),
        "gradcam.png": plot_gradcam(probes, lang),
        "per_class_accuracy.png": plot_per_class_accuracy(probes, lang),
        "confusion.png": plot_confusion(probes, lang),
        "seed_band.png": plot_seed_band(load_histories(run_dir, models, seeds or [seed]), lang),
    }
    if "se" in probes:
        se = probes["se"]
        figures["channel_attention.png"] = plot_channel_attention(se, lang)
        figures["excitation_lines.png"] = plot_excitation_lines(se, lang)
        figures["se_rescaling.png"] = plot_se_rescaling(se, lang)
        figures["gate_distribution.png"] = plot_gate_distribution(se, lang)
    figures["gradcam_misclassified.png"] = plot_gradcam_misclassified(probes, lang)
    for name, fig in figures.items():
        if name not in MULTI_SEED:
            label_seed(fig, seed, lang)
    return atomic.save_figures(figures, out_dir, dpi=dpi, bbox_inches="tight")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.figures", description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--seed", type=int, required=True, help="which seed's run the figures show")
    p.add_argument("--seeds", type=int, nargs="+", help="the seeds the across-seed figure shows (default: --seed)")
    p.add_argument("--lang", required=True, choices=languages())
    p.add_argument("--channels-shown", type=int, default=8)
    p.add_argument("--dpi", type=int, default=120)
    args = p.parse_args(argv)
    try:
        for path in draw_all(args.run_dir, args.models, args.seed, args.lang, args.channels_shown, args.dpi,
                             args.seeds):
            print(path)
    except (FontError, OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
