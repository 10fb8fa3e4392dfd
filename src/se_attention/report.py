"""Tables for the site, in each language, from the metrics files a run wrote.

    python -m se_attention.report --run-dir results/paper --models cnn se --seeds 0 --langs zh en

Writes tables/<lang>/*.md (Markdown fragments the site includes) and summary.json (the same
numbers, machine-readable). Nothing here is typed by hand: every number comes from
runs/<model>/seed<k>/metrics.json, data/provenance.json or the model definition, except the SENet
paper's published CIFAR-10 errors in SENET_CIFAR10_ERROR, which the literature table cites as such.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

import numpy as np
import scipy.stats

from . import atomic, run_folder
from .cnn import build_model, multiply_adds, parameter_count
from .se import SEBlock

CONFIDENCE = 0.95  # level of the confidence interval of the SE - CNN gap

# Literature constants, not results of this study: CIFAR-10 top-1 test error (%) without and with SE
# blocks, as published in J. Hu, L. Shen, S. Albanie, G. Sun, E. Wu, "Squeeze-and-Excitation Networks",
# CVPR 2018; extended version IEEE TPAMI 42(8), 2020 (arXiv:1709.01507), CIFAR-10 results table.
SENET_CIFAR10_ERROR = {
    "ResNet-110": {"base": 6.37, "se": 5.21},
    "ResNet-164": {"base": 5.46, "se": 4.39},
}
SENET_CITATION = ("J. Hu, L. Shen, S. Albanie, G. Sun, E. Wu, *Squeeze-and-Excitation Networks*, CVPR 2018 / "
                  "IEEE TPAMI 2020 ([arXiv:1709.01507](https://arxiv.org/abs/1709.01507))")

TEXT = {
    "en": {
        "model": {"cnn": "CNN", "se": "CNN + SE"},
        "metrics_head": ["Model", "Seeds", "Epochs", "Final test acc. (%)", "Best test acc. (%)", "Parameters",
                         "Train time / epoch (s)", "Images / s"],
        "epochs_note": "Trained for {done} epochs; the lesson's recipe asks for {recipe}.",
        "epochs_note_full": "Trained for the recipe's full {done} epochs.",
        "seeds_note": "Mean ± sample standard deviation over seeds {seeds}.",
        "one_seed_note": "One seed ({seeds}): a single run cannot separate a small gap from seed noise.",
        "monitor_note": {"test": "The learning-rate scheduler watched the test loss, as in the lesson (see the FAQ).",
                         "val": "The learning-rate scheduler watched a held-out validation split."},
        "device_note": "Trained on: {device}.",
        "arch_head": ["Layer", "Output shape", "CNN parameters", "CNN + SE parameters"],
        "block": "conv block {k} (conv 3×3, BN, ReLU, max-pool)",
        "se": "SE block {k} ({c} → {h} → {c})",
        "total": "**total**",
        "macs": "multiply-adds per image",
        "data_head": ["Item", "Value"],
        "data_rows": {"source": "source", "layout": "layout", "md5": "archive md5", "train": "training images",
                      "test": "test images", "per_class": "per class (train / test)", "sha": "prepared arrays sha256"},
        "recipe_head": ["Setting", "Value"],
        "recipe_rows": {
            "epochs": "epochs", "batch_size": "batch size", "lr": "optimizer", "plateau": "learning-rate schedule",
            "monitor": "the schedule watches", "augment": "training augmentation (in order)",
            "normalize": "normalisation (mean / std)", "loss": "loss",
        },
        "adam": "Adam, learning rate {lr}",
        "plateau": "ReduceLROnPlateau: × {factor} after {patience} epochs without improvement",
        "monitor_value": {"test": "the test loss (as in the lesson)", "val": "a held-out validation loss ({n} images per class)"},
        "augment_value": "RandomCrop(32, padding {crop_padding}), horizontal flip (p = {hflip_p}), ColorJitter(brightness {brightness}, "
                         "contrast {contrast}, saturation {saturation}, hue {hue}), RandomRotation(±{rotation_deg}°)",
        "loss_value": "cross-entropy",
        "fact_se_params": "In this study the three SE blocks add {extra:,} parameters to the CNN's {base:,} "
                          "(+{pct:.2f}%).",
        "fact_gap": "In the paper run ({epochs} epochs, seed(s) {seeds}) the final test accuracy is {cnn}% for the CNN "
                    "and {se}% for CNN + SE: a difference of {gap:+.2f} points.",
        "fact_time": "Training time per epoch in the paper run: {cnn:.1f} s for the CNN, {se:.1f} s for CNN + SE "
                     "({pct:+.0f}%), on {device}.",
        "specificity": "How class-specific are the gates? The share of a gate's variance explained by the class "
                       "(ω², 0: the gate ignores the class, 1: the class alone sets it), averaged over channels, is "
                       "{values} for blocks {blocks} (seed {seed}, {n} test images drawn at random). {verdict}",
        "spec_rises": "It rises with depth: the later the block, the more its gates depend on the class, as the SENet "
                      "paper found for SE-ResNet-50 (early excitations nearly class-agnostic, late ones class-specific).",
        "spec_flat": "It does not rise steadily with depth, unlike the SENet paper's SE-ResNet-50, where early blocks "
                     "were class-agnostic and late blocks class-specific.",
        "seeds_head": ["Model", "Seed", "Final test acc. (%)", "Best test acc. (%) (epoch)", "Train time / epoch (s)"],
        "best_at": "{acc:.2f} (epoch {epoch})",
        "mean_row": "**mean ± std** ({n} seeds)",
        "mean_row_one": "**mean** (1 seed: no std)",
        "seeds_table_note": "Final = after the last epoch; best = the highest test accuracy of any epoch, which uses "
                            "the test set for selection and so overstates the model. Mean ± sample standard "
                            "deviation (n − 1) over seeds.",
        "gap_head": ["Seed", "CNN final test acc. (%)", "CNN + SE final test acc. (%)", "Gap SE − CNN (points)"],
        "stats_head": ["Pairs (n)", "Mean gap (points)", "Std of the gaps (points)",
                       "{level}% CI of the mean gap (t, n − 1 df)", "Paired t-test p"],
        "no_interval": "n = 1: no interval; a single pair of runs cannot separate a gap of this size from seed noise",
        "no_spread": "n = 1: undefined",
        "no_test": "n = 1: no test",
        "p_equal_gaps": "undefined (all gaps equal)",
        "gap_note": "Paired by seed: with the same seed both models see the same data order and augmentation draws. "
                    "The interval is mean ± t(n − 1) × std / √n; the p-value is the two-sided paired t-test "
                    "(`scipy.stats.ttest_rel`) of the null hypothesis that SE does not change the final accuracy.",
        "verdict_one": "**Not yet evidence.** With one seed per model (n = 1), CNN + SE's final test accuracy differs "
                       "from the CNN's by {gap:+.2f} points, but a single pair of runs cannot separate a gap of this "
                       "size from seed noise. More seeds (`seeds:` in `config/config.yaml`) turn this into a "
                       "confidence interval.",
        "verdict_helps": "**SE helps.** Over {n} paired seeds, CNN + SE is on average {size:.2f} points more accurate "
                         "than the CNN ({level}% CI [{lo:+.2f}, {hi:+.2f}] points, paired t-test p {p}): the "
                         "interval excludes 0.",
        "verdict_hurts": "**SE hurts.** Over {n} paired seeds, CNN + SE is on average {size:.2f} points less "
                         "accurate than the CNN ({level}% CI [{lo:+.2f}, {hi:+.2f}] points, paired t-test p {p}): "
                         "the interval excludes 0.",
        "verdict_none": "**No detectable difference at {n} seeds.** The mean gap SE − CNN is {gap:+.2f} points, but "
                        "its {level}% CI [{lo:+.2f}, {hi:+.2f}] includes 0 (paired t-test p {p}); more seeds would "
                        "narrow it.",
        "lit_head": ["Network", "Error without SE (%)", "Error with SE (%)", "Error reduction (points)",
                     "Relative reduction (%)", "Source"],
        "lit_ours": "our CNN",
        "lit_published": "SENet paper (published)",
        "lit_this_study": "this study, mean of {n} seeds",
        "lit_this_study_one": "this study, 1 seed",
        "lit_note": "Error = 100 − final test accuracy. The ResNet rows are the values published in {citation}, "
                    "not rerun here. Our CNN: {blocks} conv blocks without residual connections, {params:,} "
                    "parameters ({se_params:,} with SE), {epochs} epochs with Adam (learning rate {lr}); seeds: "
                    "{seeds}. Relative reduction = reduction / error without SE; a negative value would "
                    "mean SE raised the error.",
        "cost_head": ["Model", "Parameters", "Multiply-adds / image", "Train time / epoch (s)", "Images / s"],
        "perf_head": ["Model", "Pipeline", "Images / s", "Share of compute roof", "Peak memory (MB)",
                      "ms per step: data / forward / backward / optimizer"],
        "pipeline": {"lesson": "lesson (PIL + DataLoader)", "ours": "ours (batched tensors)"},
        "perf_note": "Measured by `python -m se_attention.bench` ({steps} timed steps of batch 64 per pipeline and "
                     "model, {threads} threads, {data}, each pipeline in its own process, the two taking turns "
                     "every few steps) on {device}; sgemm "
                     "throughput {gflops:.0f} GFLOP/s sets the compute roof. **Speed-up: {speedup:.2f}×** (the "
                     "smaller of the two models' ratios).",
        "no_bench": "No benchmark has been recorded for this run. `python -m se_attention.bench --data "
                    "data/<run>/cifar10.npz --out results/<run>/performance/speed.json` measures it.",
        "faith_head": ["Model", "Pipeline", "Test accuracy after each epoch (%)"],
        "faith_note": "Both pipelines trained with seed {seed} for {epochs} epochs on the full training set, "
                      "one thread each (`python -m se_attention.bench --faithfulness {epochs}`). After the last "
                      "epoch, ours minus the lesson's: {diffs} points. The seed fixes the initial weights of "
                      "both, but each pipeline draws its data order and augmentation from its own random stream, "
                      "so the two curves differ as runs of two different seeds do: one pair cannot tell a "
                      "difference of a point or two from that noise.",
        "no_faith": "No faithfulness run has been recorded for this run.",
        "jpeg": "**These results come from the JPEG re-encoding of CIFAR-10** (quality 75): real CIFAR-10 images, "
                "slightly lossy, so accuracies may differ from the official archive by a fraction of a percent.",
        "official": "These results come from the official CIFAR-10 archive.",
    },
    "zh": {
        "model": {"cnn": "CNN", "se": "CNN + SE"},
        "metrics_head": ["模型", "随机种子", "轮数", "最终测试准确率 (%)", "最佳测试准确率 (%)", "参数量",
                         "每轮训练时间 (秒)", "每秒图像数"],
        "epochs_note": "本结果训练了 {done} 轮；课程原方案为 {recipe} 轮。",
        "epochs_note_full": "按原方案完整训练了 {done} 轮。",
        "seeds_note": "数值为种子 {seeds} 的均值 ± 样本标准差。",
        "one_seed_note": "只有一个随机种子（{seeds}）：单次运行无法把微小差距与随机波动区分开。",
        "monitor_note": {"test": "学习率调度器监控的是测试集损失，与课程一致（见八股问答）。",
                         "val": "学习率调度器监控的是单独划出的验证集损失。"},
        "device_note": "训练设备：{device}。",
        "arch_head": ["层", "输出形状", "CNN 参数量", "CNN + SE 参数量"],
        "block": "卷积块 {k}（3×3 卷积、BN、ReLU、最大池化）",
        "se": "SE 模块 {k}（{c} → {h} → {c}）",
        "total": "**合计**",
        "macs": "每张图像的乘加次数",
        "data_head": ["项目", "值"],
        "data_rows": {"source": "数据来源", "layout": "格式", "md5": "压缩包 md5", "train": "训练图像",
                      "test": "测试图像", "per_class": "每类（训练 / 测试）", "sha": "预处理数组 sha256"},
        "recipe_head": ["设置", "值"],
        "recipe_rows": {
            "epochs": "训练轮数", "batch_size": "批大小", "lr": "优化器", "plateau": "学习率调度",
            "monitor": "调度器监控", "augment": "训练数据增强（按顺序）", "normalize": "标准化（均值 / 标准差）",
            "loss": "损失函数",
        },
        "adam": "Adam，学习率 {lr}",
        "plateau": "ReduceLROnPlateau：连续 {patience} 轮没有改善时乘以 {factor}",
        "monitor_value": {"test": "测试集损失（与课程一致）", "val": "单独划出的验证集损失（每类 {n} 张）"},
        "augment_value": "RandomCrop(32, padding {crop_padding})、水平翻转（p = {hflip_p}）、ColorJitter(亮度 {brightness}、"
                         "对比度 {contrast}、饱和度 {saturation}、色调 {hue})、RandomRotation(±{rotation_deg}°)",
        "loss_value": "交叉熵",
        "fact_se_params": "在本实验中，三个 SE 模块给 CNN 的 {base:,} 个参数增加了 {extra:,} 个（+{pct:.2f}%）。",
        "fact_gap": "在论文运行中（{epochs} 轮，随机种子 {seeds}），CNN 的最终测试准确率为 {cnn}%，CNN + SE 为 {se}%，"
                    "相差 {gap:+.2f} 个百分点。",
        "fact_time": "论文运行中每轮训练时间：CNN {cnn:.1f} 秒，CNN + SE {se:.1f} 秒（{pct:+.0f}%），设备：{device}。",
        "specificity": "SE 权重有多依赖类别？用类别能解释的权重方差比例 ω²（0：权重与类别无关，1：权重完全由类别决定）"
                       "衡量，对通道取平均后，卷积块 {blocks} 分别为 {values}（种子 {seed}，随机抽取的 {n} 张测试图像）。{verdict}",
        "spec_rises": "它随深度上升：越深的卷积块，其权重越依赖类别，与 SENet 论文在 SE-ResNet-50 上的发现一致"
                      "（浅层的激励几乎与类别无关，深层的激励依赖类别）。",
        "spec_flat": "它并没有随深度稳定上升，这与 SENet 论文在 SE-ResNet-50 上的发现（浅层与类别无关、深层依赖类别）不同。",
        "seeds_head": ["模型", "随机种子", "最终测试准确率 (%)", "最佳测试准确率 (%)（轮次）", "每轮训练时间 (秒)"],
        "best_at": "{acc:.2f}（第 {epoch} 轮）",
        "mean_row": "**均值 ± 标准差**（{n} 个种子）",
        "mean_row_one": "**均值**（1 个种子：没有标准差）",
        "seeds_table_note": "最终 = 最后一轮结束时；最佳 = 所有轮次中最高的测试准确率，它用测试集做了挑选，会高估模型。"
                            "均值 ± 样本标准差（n − 1）按随机种子计算。",
        "gap_head": ["随机种子", "CNN 最终测试准确率 (%)", "CNN + SE 最终测试准确率 (%)", "差距 SE − CNN（百分点）"],
        "stats_head": ["配对数 (n)", "平均差距（百分点）", "差距的标准差（百分点）",
                       "平均差距的 {level}% 置信区间（t 分布，n − 1 自由度）", "配对 t 检验 p 值"],
        "no_interval": "n = 1：无法给出区间；仅凭一对运行无法把这样大小的差距与随机种子带来的波动区分开",
        "no_spread": "n = 1：无定义",
        "no_test": "n = 1：无法检验",
        "p_equal_gaps": "无定义（所有差距相等）",
        "gap_note": "按随机种子配对：同一个种子下，两个模型看到的数据顺序和增强参数相同。区间为 均值 ± t(n − 1) × 标准差 / √n；"
                    "p 值来自双侧配对 t 检验（`scipy.stats.ttest_rel`），零假设是 SE 不改变最终准确率。",
        "verdict_one": "**尚不构成证据。** 每个模型只有一个随机种子（n = 1）：CNN + SE 的最终测试准确率与 CNN 相差 "
                       "{gap:+.2f} 个百分点，但仅凭一对运行无法把这样大小的差距与随机种子带来的波动区分开。"
                       "增加种子（`config/config.yaml` 中的 `seeds:`）后，这里会给出置信区间。",
        "verdict_helps": "**SE 有帮助。** 在 {n} 对同种子的运行中，CNN + SE 的准确率平均比 CNN 高 {size:.2f} 个百分点"
                         "（{level}% 置信区间 [{lo:+.2f}, {hi:+.2f}]，配对 t 检验 p {p}），区间不包含 0。",
        "verdict_hurts": "**SE 有害。** 在 {n} 对同种子的运行中，CNN + SE 的准确率平均比 CNN 低 {size:.2f} 个百分点"
                         "（{level}% 置信区间 [{lo:+.2f}, {hi:+.2f}]，配对 t 检验 p {p}），区间不包含 0。",
        "verdict_none": "**在 {n} 个种子下检测不到差异。** SE − CNN 的平均差距为 {gap:+.2f} 个百分点，但其 {level}% "
                        "置信区间 [{lo:+.2f}, {hi:+.2f}] 包含 0（配对 t 检验 p {p}）；更多种子可以让区间变窄。",
        "lit_head": ["网络", "不加 SE 的错误率 (%)", "加 SE 的错误率 (%)", "错误率降低（百分点）", "相对降低 (%)", "来源"],
        "lit_ours": "本实验的 CNN",
        "lit_published": "SENet 论文（发表值）",
        "lit_this_study": "本实验，{n} 个种子的均值",
        "lit_this_study_one": "本实验，1 个种子",
        "lit_note": "错误率 = 100 − 最终测试准确率。ResNet 两行是 {citation} 发表的数值，本项目没有重新训练。"
                    "本实验的 CNN：{blocks} 个卷积块、没有残差连接，{params:,} 个参数（加 SE 后 {se_params:,} 个），"
                    "用 Adam（学习率 {lr}）训练 {epochs} 轮；随机种子：{seeds}。相对降低 = 降低量 / 不加 SE 的错误率；"
                    "负值表示 SE 反而提高了错误率。",
        "cost_head": ["模型", "参数量", "每张图像的乘加次数", "每轮训练时间 (秒)", "每秒图像数"],
        "perf_head": ["模型", "流水线", "每秒图像数", "占计算上限的比例", "峰值内存 (MB)",
                      "每步毫秒数：数据 / 前向 / 反向 / 优化器"],
        "pipeline": {"lesson": "课程原版（PIL + DataLoader）", "ours": "本项目（批量张量）"},
        "perf_note": "由 `python -m se_attention.bench` 测得（每个流水线和模型计时 {steps} 步，批大小 64，{threads} 个线程，"
                     "{data}，每个流水线在单独的进程中运行，两者每隔几步轮流进行），设备：{device}；sgemm 吞吐量 {gflops:.0f} GFLOP/s 决定计算上限。"
                     "**加速比：{speedup:.2f}×**（取两个模型中较小的比值）。",
        "no_bench": "这次运行还没有记录基准测试。可用 `python -m se_attention.bench --data data/<run>/cifar10.npz "
                    "--out results/<run>/performance/speed.json` 测量。",
        "faith_head": ["模型", "流水线", "每轮结束时的测试准确率 (%)"],
        "faith_note": "两个流水线都使用随机种子 {seed}、在完整训练集上训练 {epochs} 轮，各用一个线程"
                      "（`python -m se_attention.bench --faithfulness {epochs}`）。最后一轮时本项目减去课程原版："
                      "{diffs} 个百分点。随机种子固定了两者的初始权重，但两个流水线各自从自己的随机数流中抽取数据顺序和"
                      "数据增强，所以两条曲线的差别与两个不同种子的运行之间的差别相当：仅凭一对运行，无法把一两个百分点的"
                      "差异与这种噪声区分开。",
        "no_faith": "这次运行还没有记录忠实性对比。",
        "jpeg": "**本结果使用的是 CIFAR-10 的 JPEG 重编码版本**（质量 75）：图像是真实的 CIFAR-10，但有轻微有损压缩，"
                "准确率可能与官方数据相差零点几个百分点。",
        "official": "本结果使用官方 CIFAR-10 压缩包。",
    },
}


# Characters Markdown or HTML would read as syntax. A value from data or configuration (a source
# file name, a device string) is written as character references, so it shows as text: no tag, no
# emphasis, and no `|` that would open a table column.
_MARKDOWN_SYNTAX = set("\\`*_{}[]()#+!|<>&~$")  # $ opens maths (arithmatex)


def literal(value) -> str:
    """A value from data or configuration, safe to place anywhere in the Markdown we write."""
    return "".join(f"&#{ord(c)};" if c in _MARKDOWN_SYNTAX else c for c in str(value))


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def mean_std(values: list[float], digits: int = 2) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def load_metrics(run_dir: Path, models: list[str], seeds: list[int]) -> dict[str, list[dict]]:
    return {m: [atomic.read_json(run_folder(run_dir, m, s) / "metrics.json", "a training run's metrics")
                for s in seeds] for m in models}


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


def metrics_markdown(summary: dict, recipe_epochs: int, monitor: str, lang: str) -> str:
    t = TEXT[lang]
    rows = []
    for model, s in summary.items():
        rows.append([t["model"][model], ", ".join(map(str, s["seeds"])), "/".join(map(str, s["epochs"])),
                     mean_std(s["final_test_acc"]), mean_std(s["best_test_acc"]), f"{s['parameters']:,}",
                     mean_std(s["seconds_per_epoch"], 1), mean_std(s["images_per_second"], 0)])
    done = max(e for s in summary.values() for e in s["epochs"])
    seeds = ", ".join(map(str, next(iter(summary.values()))["seeds"]))
    notes = [t["epochs_note_full"].format(done=done) if done >= recipe_epochs
             else t["epochs_note"].format(done=done, recipe=recipe_epochs),
             t["seeds_note"].format(seeds=seeds) if "," in seeds else t["one_seed_note"].format(seeds=seeds),
             t["monitor_note"][monitor],
             t["device_note"].format(device=literal(next(iter(summary.values()))["device"]))]
    return table(t["metrics_head"], rows) + "\n" + " ".join(notes) + "\n"


def seeds_markdown(summary: dict, lang: str) -> str:
    """One row per model and seed, then each model's mean ± sample std over its seeds."""
    t = TEXT[lang]
    rows = []
    for model, s in summary.items():
        name = t["model"][model]
        for seed, final, best, epoch, seconds in zip(s["seeds"], s["final_test_acc"], s["best_test_acc"],
                                                     s["best_epoch"], s["seconds_per_epoch"]):
            rows.append([name, seed, f"{final:.2f}", t["best_at"].format(acc=best, epoch=epoch), f"{seconds:.1f}"])
        n = len(s["seeds"])
        label = t["mean_row"].format(n=n) if n > 1 else t["mean_row_one"]
        rows.append([f"**{name}**", label, mean_std(s["final_test_acc"]), mean_std(s["best_test_acc"]),
                     mean_std(s["seconds_per_epoch"], 1)])
    return table(t["seeds_head"], rows) + "\n" + t["seeds_table_note"] + "\n"


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


def format_p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def gap_verdict(stats: dict, lang: str) -> str:
    """One sentence that says what the paired gap supports: not yet evidence, help, harm or no detectable change."""
    t = TEXT[lang]
    if stats["ci"] is None:
        return t["verdict_one"].format(gap=stats["mean"])
    lo, hi = stats["ci"]
    if stats["p_value"] is None:
        p = t["p_equal_gaps"]
    else:
        p = format_p(stats["p_value"])
        p = p if p.startswith("<") else "= " + p
    key = "verdict_helps" if lo > 0 else "verdict_hurts" if hi < 0 else "verdict_none"
    return t[key].format(n=stats["n"], gap=stats["mean"], size=abs(stats["mean"]), lo=lo, hi=hi, p=p,
                         level=f"{100 * stats['confidence']:g}")


def gap_markdown(summary: dict, stats: dict, lang: str) -> str:
    """The paired gaps per seed, their statistics, how they were computed, and the verdict."""
    t = TEXT[lang]
    seeds, cnn, se = paired_final_accuracies(summary)
    rows = [[seed, f"{c:.2f}", f"{s:.2f}", f"{g:+.2f}"] for seed, c, s, g in zip(seeds, cnn, se, stats["gaps"])]
    if stats["ci"] is None:
        spread, interval, p = t["no_spread"], t["no_interval"], t["no_test"]
    else:
        spread, interval = f"{stats['std']:.2f}", "[{:+.2f}, {:+.2f}]".format(*stats["ci"])
        p = t["p_equal_gaps"] if stats["p_value"] is None else format_p(stats["p_value"])
    head = [h.format(level=f"{100 * stats['confidence']:g}") for h in t["stats_head"]]
    summary_row = [stats["n"], f"{stats['mean']:+.2f}", spread, interval, p]
    return (table(t["gap_head"], rows) + "\n" + table(head, [summary_row]) + "\n" + t["gap_note"] + "\n\n"
            + gap_verdict(stats, lang) + "\n")


def literature_markdown(summary: dict, recipe: dict, lang: str) -> str:
    """Our CIFAR-10 error beside the SENet paper's published ResNet errors, with and without SE."""
    t = TEXT[lang]
    seeds, cnn, se = paired_final_accuracies(summary)
    ours = {"base": 100 - statistics.mean(cnn), "se": 100 - statistics.mean(se)}
    rows = [error_row(name, errors, t["lit_published"]) for name, errors in SENET_CIFAR10_ERROR.items()]
    source = t["lit_this_study"].format(n=len(seeds)) if len(seeds) > 1 else t["lit_this_study_one"]
    rows.append(error_row(t["lit_ours"], ours, source))
    note = t["lit_note"].format(citation=SENET_CITATION, blocks=len(recipe["model"]["channels"]),
                                params=summary["cnn"]["parameters"], se_params=summary["se"]["parameters"],
                                epochs="/".join(map(str, summary["cnn"]["epochs"])), lr=recipe["train"]["lr"],
                                seeds=", ".join(map(str, seeds)))
    return table(t["lit_head"], rows) + "\n" + note + "\n"


def error_row(name: str, errors: dict, source: str) -> list[str]:
    reduction = errors["base"] - errors["se"]
    return [name, f"{errors['base']:.2f}", f"{errors['se']:.2f}", f"{reduction:.2f}",
            f"{100 * reduction / errors['base']:.1f}", source]


def architecture_markdown(model_config: dict, lang: str) -> str:
    t = TEXT[lang]
    cnn, se = build_model("cnn", **model_config), build_model("se", **model_config)
    rows, side = [], 32
    for k, (b_cnn, b_se) in enumerate(zip(cnn.blocks, se.blocks), start=1):
        side //= 2
        c = b_cnn.conv.out_channels
        rows.append([t["block"].format(k=k), f"{c}×{side}×{side}", f"{parameter_count(b_cnn):,}",
                     f"{parameter_count(b_se) - parameter_count(b_se.se):,}"])
        if isinstance(b_se.se, SEBlock):
            rows.append([t["se"].format(k=k, c=c, h=b_se.se.fc1.out_features), f"{c}×{side * 2}×{side * 2}", "—",
                         f"{parameter_count(b_se.se):,}"])
    for name in ("fc1", "fc2"):
        layer = getattr(cnn, name)
        rows.append([f"{name} (linear {layer.in_features} → {layer.out_features})", str(layer.out_features),
                     f"{parameter_count(layer):,}", f"{parameter_count(getattr(se, name)):,}"])
    rows.append([t["total"], "", f"**{parameter_count(cnn):,}**", f"**{parameter_count(se):,}**"])
    rows.append([t["macs"], "", f"{multiply_adds(cnn):,}", f"{multiply_adds(se):,}"])
    return table(t["arch_head"], rows)


def data_markdown(provenance: dict, lang: str) -> str:
    t = TEXT[lang]
    r = t["data_rows"]
    counts = provenance["counts"]
    per_class = sorted({f"{counts['train'][c]} / {counts['test'][c]}" for c in counts["train"]})
    rows = [[r["source"], f"<code>{literal(provenance['source'])}</code>"], [r["layout"], literal(provenance["layout"])],
            [r["md5"], f"<code>{literal(provenance['source_md5'])}</code>" if provenance.get("source_md5") else "—"],
            [r["train"], f"{provenance['totals']['train']:,}"], [r["test"], f"{provenance['totals']['test']:,}"],
            [r["per_class"], ", ".join(per_class)], [r["sha"], f"`{provenance['arrays_sha256'][:16]}…`"]]
    note = t["jpeg"] if provenance.get("jpeg_reencoded") else t["official"]
    return table(t["data_head"], rows) + "\n" + note + "\n"


def recipe_markdown(recipe: dict, lang: str) -> str:
    t = TEXT[lang]
    r, tr = t["recipe_rows"], recipe["train"]
    norm = recipe["normalize"]
    rows = [
        [r["epochs"], tr["epochs"]],
        [r["batch_size"], tr["batch_size"]],
        [r["lr"], t["adam"].format(lr=tr["lr"])],
        [r["plateau"], t["plateau"].format(**tr["plateau"])],
        [r["monitor"], t["monitor_value"][tr["monitor"]].format(n=tr["val_per_class"])],
        [r["augment"], t["augment_value"].format(**recipe["augment"])],
        [r["normalize"], f"{tuple(norm['mean'])} / {tuple(norm['std'])}"],
        [r["loss"], t["loss_value"]],
    ]
    return table(t["recipe_head"], rows)


def facts_markdown(summary: dict, lang: str) -> dict[str, str]:
    """One-sentence facts the FAQ quotes; each needs both models in the run."""
    if not {"cnn", "se"} <= set(summary):
        return {}
    t, cnn, se = TEXT[lang], summary["cnn"], summary["se"]
    extra = se["parameters"] - cnn["parameters"]
    gap = statistics.mean(se["final_test_acc"]) - statistics.mean(cnn["final_test_acc"])
    t_cnn, t_se = statistics.mean(cnn["seconds_per_epoch"]), statistics.mean(se["seconds_per_epoch"])
    return {
        "fact_se_params.md": t["fact_se_params"].format(extra=extra, base=cnn["parameters"],
                                                        pct=100 * extra / cnn["parameters"]),
        "fact_gap.md": t["fact_gap"].format(epochs="/".join(map(str, cnn["epochs"])),
                                            seeds=", ".join(map(str, cnn["seeds"])), cnn=mean_std(cnn["final_test_acc"]),
                                            se=mean_std(se["final_test_acc"]), gap=gap),
        "fact_time.md": t["fact_time"].format(cnn=t_cnn, se=t_se, pct=100 * (t_se / t_cnn - 1), device=literal(cnn["device"])),
    }


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


def specificity_markdown(values: list[float], seed: int, n: int, lang: str) -> str:
    t = TEXT[lang]
    rises = all(b > a for a, b in zip(values, values[1:]))
    return t["specificity"].format(values=", ".join(f"{v:.2f}" for v in values),
                                   blocks=", ".join(str(i + 1) for i in range(len(values))), seed=seed, n=n,
                                   verdict=t["spec_rises"] if rises else t["spec_flat"])


def cost_markdown(summary: dict, model_config: dict, lang: str) -> str:
    t = TEXT[lang]
    rows = [[t["model"][m], f"{s['parameters']:,}", f"{multiply_adds(build_model(m, **model_config)):,}",
             mean_std(s["seconds_per_epoch"], 1), mean_std(s["images_per_second"], 0)] for m, s in summary.items()]
    return table(t["cost_head"], rows)


def performance_markdown(run_dir: Path, lang: str) -> str:
    """The benchmark and faithfulness records that bench.py wrote, if any."""
    t = TEXT[lang]
    speed, faith = run_dir / "performance" / "speed.json", run_dir / "performance" / "faithfulness.json"
    parts = []
    if speed.exists():
        b = atomic.read_json(speed, "the benchmark record of python -m se_attention.bench")
        rows = []
        for model, m in b["models"].items():
            for name in ("lesson", "ours"):
                r = m[name]
                rows.append([t["model"][model], t["pipeline"][name], f"{r['images_per_second']:.0f}",
                             f"{100 * r['images_per_second'] / m['roof_images_per_second']:.0f}%",
                             f"{r['peak_rss_mb']:.0f}", " / ".join(f"{v:.1f}" for v in r["phases_ms"].values())])
        parts.append(table(t["perf_head"], rows) + "\n" + t["perf_note"].format(
            steps=b["steps"], threads=b["threads"], data=literal(b["data"]), device=literal(b["device"]),
            gflops=b["sgemm_gflops"],
            speedup=b["speedup"]))
    else:
        parts.append(t["no_bench"])
    if faith.exists():
        f = atomic.read_json(faith, "the faithfulness record of python -m se_attention.bench")
        rows = [[t["model"][r["model"]], t["pipeline"][r["pipeline"]], ", ".join(f"{a:.2f}" for a in r["test_acc"])]
                for r in f["runs"]]
        last = {(r["model"], r["pipeline"]): r["test_acc"][-1] for r in f["runs"]}
        diffs = ", ".join(f"{t['model'][m]} {last[m, 'ours'] - last[m, 'lesson']:+.2f}"
                          for m in dict.fromkeys(r["model"] for r in f["runs"])
                          if (m, "ours") in last and (m, "lesson") in last)
        parts.append(table(t["faith_head"], rows) + "\n" + t["faith_note"].format(
            seed=f["seed"], epochs=f["epochs"], diffs=diffs))
    else:
        parts.append(t["no_faith"])
    return "\n\n".join(parts) + "\n"


def write_reports(run_dir: Path, models: list[str], seeds: list[int], langs: list[str]) -> list[Path]:
    metrics = load_metrics(run_dir, models, seeds)
    spec = None
    if "se" in models:
        with np.load(run_folder(run_dir, "se", seeds[0]) / "probe.npz") as f:
            probe = {k: f[k] for k in f.files}
        spec = specificity(probe)
        n_gates = len(probe["gates_sample_1"])
    recipe = next(iter(metrics.values()))[0]["provenance"]["recipe"]
    provenance = atomic.read_json(run_dir / "data" / "provenance.json", "the data provenance of the prepare step")
    summary = summarize(metrics)
    gap = gap_statistics(*paired_final_accuracies(summary)[1:]) if {"cnn", "se"} <= set(models) else None
    written = []
    for lang in langs:
        out = run_dir / "tables" / lang
        parts = {
            "metrics.md": metrics_markdown(summary, recipe["train"]["epochs"], recipe["train"]["monitor"], lang),
            "architecture.md": architecture_markdown(recipe["model"], lang),
            "data.md": data_markdown(provenance, lang),
            "recipe.md": recipe_markdown(recipe, lang),
            "cost.md": cost_markdown(summary, recipe["model"], lang),
            "performance.md": performance_markdown(run_dir, lang),
            **{name: text + "\n" for name, text in facts_markdown(summary, lang).items()},
        }
        if spec is not None:
            parts["specificity.md"] = specificity_markdown(spec, seeds[0], n_gates, lang) + "\n"
        parts["seeds.md"] = seeds_markdown(summary, lang)
        if gap is not None:
            parts["gap.md"] = gap_markdown(summary, gap, lang)
            parts["verdict.md"] = gap_verdict(gap, lang) + "\n"
            parts["literature.md"] = literature_markdown(summary, recipe, lang)
        for name, text in parts.items():
            atomic.write_text(out / name, text)
            written.append(out / name)
    atomic.write_json(run_dir / "tables" / "summary.json", {
        "recipe_epochs": recipe["train"]["epochs"], "models": summary, "gap_se_minus_cnn": gap,
        "gate_class_specificity": spec, "data": provenance,
        "literature_senet_cifar10_error": {"source": SENET_CITATION, "errors": SENET_CIFAR10_ERROR}})
    return written + [run_dir / "tables" / "summary.json"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.report", description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--seeds", nargs="+", type=int, required=True)
    p.add_argument("--langs", nargs="+", required=True, choices=sorted(TEXT))
    args = p.parse_args(argv)
    try:
        for path in write_reports(args.run_dir, args.models, args.seeds, args.langs):
            print(path)
    except (OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
