"""Draw every figure of a run, in each language, from saved results only (no dataset, no GPU).

    python -m se_attention.figures --run-dir results/paper --models cnn se --seed 0 --lang zh \
        --channels-shown 8 --dpi 120

Reads runs/<model>/seed<k>/history.json and probe.npz under the run folder and
writes figures/<lang>/*.png. Each function takes plain arrays and returns a matplotlib figure,
so tests can call them on tiny synthetic inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import CLASSES, CLASSES_ZH, atomic, run_folder  # noqa: E402
from .fonts import FontError, use_cjk_font  # noqa: E402

TEXT = {
    "en": {
        "classes": CLASSES,
        "model": {"cnn": "CNN", "se": "CNN + SE"},
        "iteration": "iteration (batch)",
        "loss": "loss",
        "iter_title": "Training loss of every iteration",
        "smoothed": "moving average",
        "epoch": "epoch",
        "accuracy": "accuracy (%)",
        "train": "train",
        "test": "test",
        "acc_title": "Accuracy per epoch",
        "loss_title": "Loss per epoch",
        "input": "input",
        "true": "true",
        "pred": "pred.",
        "channel": "channel",
        "block": "block",
        "fm_title": "Feature maps of conv1-conv3 (first {n} channels), same test images in both models",
        "heat_title": "SE channel attention: mean gate per class and channel",
        "gate": "mean SE gate",
        "channels_sorted": "channel (sorted by mean gate over all classes)",
        "diagram": [("input X", "C×H×W"), ("squeeze", "global avg. pool → C"), ("FC + ReLU", "C → C/r"),
                    ("FC + sigmoid", "C/r → C"), ("scale", "X · s, per channel"), ("output", "C×H×W")],
        "diagram_title": "The SE block: squeeze, excitation, scale",
        "excitation": "excitation",
    },
    "zh": {
        "classes": CLASSES_ZH,
        "model": {"cnn": "CNN", "se": "CNN + SE"},
        "iteration": "迭代次数（批次序号）",
        "loss": "损失值",
        "iter_title": "每个迭代的训练损失",
        "smoothed": "滑动平均",
        "epoch": "轮次（epoch）",
        "accuracy": "准确率（%）",
        "train": "训练",
        "test": "测试",
        "acc_title": "每轮准确率",
        "loss_title": "每轮损失",
        "input": "输入",
        "true": "真实",
        "pred": "预测",
        "channel": "通道",
        "block": "卷积块",
        "fm_title": "conv1-conv3 的特征图（前 {n} 个通道），两个模型使用相同的测试图像",
        "heat_title": "SE 通道注意力：每个类别、每个通道的平均门控权重",
        "gate": "SE 平均权重",
        "channels_sorted": "通道（按所有类别的平均权重排序）",
        "diagram": [("输入 X", "C×H×W"), ("压缩 squeeze", "全局平均池化 → C"), ("全连接 + ReLU", "C → C/r"),
                    ("全连接 + sigmoid", "C/r → C"), ("缩放 scale", "X · s，逐通道相乘"), ("输出", "C×H×W")],
        "diagram_title": "SE 模块：压缩、激励、缩放",
        "excitation": "激励 excitation",
    },
}
COLORS = {"cnn": "#1f77b4", "se": "#d62728"}


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(x)))
    return np.convolve(x, np.ones(window) / window, mode="valid")


def plot_iteration_loss(histories: dict[str, dict], lang: str) -> plt.Figure:
    t = TEXT[lang]
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
    t = TEXT[lang]
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.2))
    for model, h in histories.items():
        ep = [r["epoch"] for r in h["epochs"]]
        name = t["model"][model]
        for split, style in (("train", "--"), ("test", "-")):
            ax_acc.plot(ep, [r[f"{split}_acc"] for r in h["epochs"]], style, color=COLORS[model], marker="o",
                        ms=3, label=f"{name} {t[split]}")
            ax_loss.plot(ep, [r[f"{split}_loss"] for r in h["epochs"]], style, color=COLORS[model], marker="o",
                         ms=3, label=f"{name} {t[split]}")
    ax_acc.set(xlabel=t["epoch"], ylabel=t["accuracy"], title=t["acc_title"])
    ax_loss.set(xlabel=t["epoch"], ylabel=t["loss"], title=t["loss_title"])
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


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
    """Rows: (test image, model); columns: the input, then conv1..conv3 outputs as the lesson hooks them."""
    t = TEXT[lang]
    models = list(probes)
    first = probes[models[0]]
    n_img = min(images, len(first["sample_index"]))
    blocks = sorted(int(k[4:]) for k in first if k.startswith("conv") and k[4:].isdigit())
    fig, axes = plt.subplots(n_img * len(models), 1 + len(blocks), figsize=(3.2 * (1 + len(blocks)), 1.9 * n_img * len(models)),
                             squeeze=False, gridspec_kw={"width_ratios": [0.45] + [1] * len(blocks)})
    for i in range(n_img):
        for j, model in enumerate(models):
            p = probes[model]
            row = axes[i * len(models) + j]
            label, pred = int(p["sample_labels"][i]), int(p["sample_preds"][i])
            row[0].imshow(p["sample_images"][i])
            row[0].set_title(f"{t['model'][model]}\n{t['true']}: {t['classes'][label]}\n{t['pred']}: {t['classes'][pred]}",
                             fontsize=8)
            for b, ax in zip(blocks, row[1:]):
                ax.imshow(_channel_grid(p[f"conv{b}"][i], channels), cmap="viridis")
                if i == 0 and j == 0:
                    ax.set_title(f"conv{b}", fontsize=10)
            for ax in row:
                ax.axis("off")
    fig.suptitle(t["fm_title"].format(n=channels), fontsize=11)
    fig.tight_layout()
    return fig


def plot_channel_attention(probe: dict, lang: str) -> plt.Figure:
    """Mean SE gate per class (rows) and channel (columns), one panel per SE block.

    Columns are sorted by the gate's mean over all classes, so a class-specific channel shows as
    a column that breaks the gradient; the CIFAR-10 counterpart of the SENet paper's Fig. 6.
    """
    t = TEXT[lang]
    keys = sorted((k for k in probe if k.startswith("gates_class_mean_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    if not keys:
        raise ValueError("the probe holds no SE gates: the channel-attention figure needs an SE model")
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.8), squeeze=False,
                             gridspec_kw={"width_ratios": [probe[k].shape[1] ** 0.5 for k in keys]})
    for ax, key in zip(axes[0], keys):
        gates = probe[key]
        order = np.argsort(gates.mean(axis=0))
        im = ax.imshow(gates[:, order], aspect="auto", cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        ax.set_yticks(range(len(t["classes"])), t["classes"], fontsize=8)
        ax.set_xlabel(t["channels_sorted"], fontsize=8)
        ax.set_title(f"{t['block']} {key.rsplit('_', 1)[1]} (C = {gates.shape[1]})")
    fig.colorbar(im, ax=axes[0].tolist(), label=t["gate"], shrink=0.9)
    fig.suptitle(t["heat_title"])
    return fig


def plot_se_diagram(lang: str) -> plt.Figure:
    """The SE block as a flow of boxes; the skip arrow carries X to the scaling step."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    t = TEXT[lang]
    fig, ax = plt.subplots(figsize=(11, 2.6))
    ax.set_xlim(0, 6)
    ax.set_ylim(-0.6, 1.3)
    ax.axis("off")
    colours = ["#dbe9f6", "#fde0c5", "#f9d5d3", "#f9d5d3", "#d9f0d3", "#dbe9f6"]
    for i, ((title, shape), colour) in enumerate(zip(t["diagram"], colours)):
        ax.add_patch(FancyBboxPatch((i + 0.08, 0.15), 0.84, 0.7, boxstyle="round,pad=0.02", fc=colour, ec="#444"))
        ax.text(i + 0.5, 0.6, title, ha="center", va="center", fontsize=10.5)
        ax.text(i + 0.5, 0.35, shape, ha="center", va="center", fontsize=8.5)
        if i:
            ax.add_patch(FancyArrowPatch((i - 0.06, 0.5), (i + 0.1, 0.5), arrowstyle="-|>", mutation_scale=12))
    ax.add_patch(FancyArrowPatch((0.5, 0.15), (4.5, 0.15), connectionstyle="arc3,rad=0.25", arrowstyle="-|>",
                                 mutation_scale=12, color="#2a7"))
    ax.annotate("", xy=(4.0, 1.0), xytext=(2.0, 1.0), arrowprops={"arrowstyle": "<->", "color": "#c33"})
    ax.text(3.0, 1.1, f"{t['excitation']}: s = σ(W₂ ReLU(W₁ z))", ha="center", color="#c33", fontsize=10)
    ax.set_title(t["diagram_title"], fontsize=12)
    return fig


# ---------------------------------------------------------------------------------------------


def load_run(run_dir: Path, models: list[str], seed: int) -> tuple[dict, dict]:
    histories, probes = {}, {}
    for model in models:
        folder = run_folder(run_dir, model, seed)
        histories[model] = json.loads((folder / "history.json").read_text())
        with np.load(folder / "probe.npz") as f:
            probes[model] = {k: f[k] for k in f.files}
    return histories, probes


def draw_all(run_dir: Path, models: list[str], seed: int, lang: str, channels: int, dpi: int) -> list[Path]:
    if lang == "zh":
        use_cjk_font()
    histories, probes = load_run(run_dir, models, seed)
    out_dir = run_dir / "figures" / lang
    figures = {
        "iteration_loss.png": plot_iteration_loss(histories, lang),
        "epoch_curves.png": plot_epoch_curves(histories, lang),
        "feature_maps.png": plot_feature_maps(probes, lang, channels),
        "se_block.png": plot_se_diagram(lang),
    }
    if "se" in probes:
        figures["channel_attention.png"] = plot_channel_attention(probes["se"], lang)
    written = []
    for name, fig in figures.items():
        atomic.save_figure(fig, out_dir / name, dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        written.append(out_dir / name)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.figures", description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--seed", type=int, required=True, help="which seed's run the figures show")
    p.add_argument("--lang", required=True, choices=sorted(TEXT))
    p.add_argument("--channels-shown", type=int, default=8)
    p.add_argument("--dpi", type=int, default=120)
    args = p.parse_args(argv)
    try:
        for path in draw_all(args.run_dir, args.models, args.seed, args.lang, args.channels_shown, args.dpi):
            print(path)
    except (FontError, OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
