"""The Markdown tables and sentences of the site, in each language, from a run's numbers.

Words come from the catalogues (locales/<lang>.yaml); values from data or configuration pass
through literal(), so that a file name can never become HTML or a table column.
"""

from __future__ import annotations

import re
import statistics

import numpy as np
from pathlib import Path

from . import atomic
from .charts import step_phases
from .cnn import build_model, multiply_adds, parameter_count
from .i18n import CatalogueError, Words
from .se import SEBlock
from .stats import gap_statistics, paired_final_accuracies


# Literature constants, not results of this study: CIFAR-10 top-1 test error (%) without and with SE
# blocks, as published in J. Hu, L. Shen, S. Albanie, G. Sun, E. Wu, "Squeeze-and-Excitation Networks",
# CVPR 2018; extended version IEEE TPAMI 42(8), 2020 (arXiv:1709.01507), CIFAR-10 results table.
SENET_CIFAR10_ERROR = {
    "ResNet-110": {"base": 6.37, "se": 5.21},
    "ResNet-164": {"base": 5.46, "se": 4.39},
}


SENET_CITATION = ("J. Hu, L. Shen, S. Albanie, G. Sun, E. Wu, *Squeeze-and-Excitation Networks*, CVPR 2018 / "
                  "IEEE TPAMI 2020 ([arXiv:1709.01507](https://arxiv.org/abs/1709.01507))")




# Characters Markdown or HTML would read as syntax. A value from data or configuration (a source
# file name, a device string) is written as character references, so it shows as text: no tag, no
# emphasis, and no `|` that would open a table column.
_MARKDOWN_SYNTAX = set("\\`*_{}[]()#+!|<>&~$")  # $ opens maths (arithmatex)


def literal(value) -> str:
    """A value from data or configuration, safe to place anywhere in the Markdown we write."""
    return "".join(f"&#{ord(c)};" if c in _MARKDOWN_SYNTAX else c for c in str(value))


# provenance.device_description writes "<arch> CPU, <n> thread(s)" for a CPU, the GPU's name otherwise.
_CPU_DEVICE = re.compile(r"^(?P<arch>.+) CPU, (?P<n>[0-9]+) threads?$")
# What provenance.device_description writes since it names the CPU model and torch's ISA.
_CPU_MODEL_DEVICE = re.compile(r"^(?P<model>.+) \((?P<arch>[^,()]+), torch (?P<isa>[^()]+)\), (?P<n>[0-9]+) threads?$")


def device_words(device, lang: str) -> str:
    """A device description in the reader's language; a GPU's name (or anything else) as it is."""
    match = _CPU_MODEL_DEVICE.match(str(device))
    if match is not None:
        return Words(lang, "report")("device_cpu_model", model=literal(match["model"]), arch=literal(match["arch"]),
                                     isa=literal(match["isa"]), count=int(match["n"]))
    match = _CPU_DEVICE.match(str(device))
    if match is None:
        return literal(device)
    return Words(lang, "report")("device_cpu", arch=literal(match["arch"]), count=int(match["n"]))


def layout_words(layout, lang: str) -> str:
    """The data layout's name in the reader's language; an unknown one as it is."""
    try:
        return Words(lang, "report")["layout_value"][str(layout)]
    except CatalogueError:
        return literal(layout)


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


# A no-break space inside "81.50 ± 0.48" and "[-1.08, +1.83]": on a phone a narrow table column
# would otherwise break a number from its spread, or an interval in two.
NBSP = "\u00a0"


def mean_std(values: list[float], digits: int = 2) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f}{NBSP}±{NBSP}{statistics.stdev(values):.{digits}f}"


def interval(low: float, high: float) -> str:
    """A confidence interval as "[-1.08, +1.83]", kept on one line."""
    return f"[{low:+.2f},{NBSP}{high:+.2f}]"


def metrics_markdown(summary: dict, recipe_epochs: int, monitor: str, lang: str) -> str:
    t = Words(lang, "report")
    rows = []
    for model, s in summary.items():
        rows.append([t["model"][model], ", ".join(map(str, s["seeds"])), "/".join(map(str, s["epochs"])),
                     mean_std(s["final_test_acc"]), mean_std(s["best_test_acc"]), f"{s['parameters']:,}",
                     mean_std(s["seconds_per_epoch"], 1), mean_std(s["images_per_second"], 0)])
    done = max(e for s in summary.values() for e in s["epochs"])
    seeds = next(iter(summary.values()))["seeds"]
    notes = [t("epochs_note_full", done=done) if done >= recipe_epochs
             else t("epochs_note", done=done, recipe=recipe_epochs),
             t("seeds_note", count=len(seeds), seeds=", ".join(map(str, seeds))),
             t["monitor_note"][monitor],
             t("device_note", device=device_words(next(iter(summary.values()))["device"], lang))]
    return table(t["metrics_head"], rows) + "\n" + " ".join(notes) + "\n"


def seeds_markdown(summary: dict, lang: str) -> str:
    """One row per model and seed, then each model's mean ± sample std over its seeds."""
    t = Words(lang, "report")
    rows = []
    for model, s in summary.items():
        name = t["model"][model]
        for seed, final, best, epoch, seconds in zip(s["seeds"], s["final_test_acc"], s["best_test_acc"],
                                                     s["best_epoch"], s["seconds_per_epoch"]):
            rows.append([name, seed, f"{final:.2f}", t("best_at", acc=best, epoch=epoch), f"{seconds:.1f}"])
        n = len(s["seeds"])
        label = t("mean_row", count=n)
        rows.append([f"**{name}**", label, mean_std(s["final_test_acc"]), mean_std(s["best_test_acc"]),
                     mean_std(s["seconds_per_epoch"], 1)])
    return table(t["seeds_head"], rows) + "\n" + t["seeds_table_note"] + "\n"


def format_p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def gap_verdict(stats: dict, lang: str) -> str:
    """One sentence that says what the paired gap supports: not yet evidence, help, harm or no detectable change."""
    t = Words(lang, "report")
    if stats["ci"] is None:
        return t("verdict_one", gap=stats["mean"])
    lo, hi = stats["ci"]
    if stats["p_value"] is None:
        p = t["p_equal_gaps"]
    else:
        p = format_p(stats["p_value"])
        p = p if p.startswith("<") else "= " + p
    key = "verdict_helps" if lo > 0 else "verdict_hurts" if hi < 0 else "verdict_none"
    return t(key, n=stats["n"], gap=stats["mean"], size=abs(stats["mean"]), lo=lo, hi=hi, p=p,
             level=f"{100 * stats['confidence']:g}")


def gap_markdown(summary: dict, stats: dict, lang: str) -> str:
    """The paired gaps per seed, their statistics, how they were computed, and the verdict."""
    t = Words(lang, "report")
    seeds, cnn, se = paired_final_accuracies(summary)
    rows = [[seed, f"{c:.2f}", f"{s:.2f}", f"{g:+.2f}"] for seed, c, s, g in zip(seeds, cnn, se, stats["gaps"])]
    if stats["ci"] is None:
        spread, ci, p = t["no_spread"], t["no_interval"], t["no_test"]
    else:
        spread, ci = f"{stats['std']:.2f}", interval(*stats["ci"])
        p = t["p_equal_gaps"] if stats["p_value"] is None else format_p(stats["p_value"])
    head = t("stats_head", level=f"{100 * stats['confidence']:g}")
    summary_row = [stats["n"], f"{stats['mean']:+.2f}", spread, ci, p]
    return (table(t["gap_head"], rows) + "\n" + table(head, [summary_row]) + "\n" + t["gap_note"] + "\n\n"
            + gap_verdict(stats, lang) + "\n")


def literature_markdown(summary: dict, recipe: dict, lang: str) -> str:
    """Our CIFAR-10 error beside the SENet paper's published ResNet errors, with and without SE."""
    t = Words(lang, "report")
    seeds, cnn, se = paired_final_accuracies(summary)
    ours = {"base": 100 - statistics.mean(cnn), "se": 100 - statistics.mean(se)}
    rows = [error_row(name, errors, t["lit_published"]) for name, errors in SENET_CIFAR10_ERROR.items()]
    source = t("lit_this_study", count=len(seeds))
    rows.append(error_row(t["lit_ours"], ours, source))
    note = t("lit_note", citation=SENET_CITATION, blocks=len(recipe["model"]["channels"]),
             params=summary["cnn"]["parameters"], se_params=summary["se"]["parameters"],
             epochs="/".join(map(str, summary["cnn"]["epochs"])), lr=recipe["train"]["lr"],
             seeds=", ".join(map(str, seeds)))
    return table(t["lit_head"], rows) + "\n" + note + "\n"


def error_row(name: str, errors: dict, source: str) -> list[str]:
    reduction = errors["base"] - errors["se"]
    return [name, f"{errors['base']:.2f}", f"{errors['se']:.2f}", f"{reduction:.2f}",
            f"{100 * reduction / errors['base']:.1f}", source]


def architecture_markdown(model_config: dict, lang: str) -> str:
    """Layer by layer in the order the network computes: conv-BN-ReLU -> [SE] -> pool, with the shape
    each step outputs, so that the SE row sits where the block applies it (before the pooling)."""
    t = Words(lang, "report")
    cnn, se = build_model("cnn", **model_config), build_model("se", **model_config)
    side = 32
    rows = [[t["input"], f"3×{side}×{side}", "—", "—"]]
    for k, (b_cnn, b_se) in enumerate(zip(cnn.blocks, se.blocks), start=1):
        c = b_cnn.conv.out_channels
        conv = parameter_count(b_cnn.conv) + parameter_count(b_cnn.bn)
        rows.append([t("block", k=k), f"{c}×{side}×{side}", f"{conv:,}",
                     f"{parameter_count(b_se.conv) + parameter_count(b_se.bn):,}"])
        if isinstance(b_se.se, SEBlock):
            rows.append([t("se", k=k, c=c, h=b_se.se.fc1.out_features), f"{c}×{side}×{side}", "—",
                         f"{parameter_count(b_se.se):,}"])
        side //= 2
        rows.append([t("pool", k=k), f"{c}×{side}×{side}", "0", "0"])
    rows.append([t["flatten"], str(cnn.fc1.in_features), "0", "0"])
    for name in ("fc1", "fc2"):
        layer = getattr(cnn, name)
        rows.append([t("fc", name=name, i=layer.in_features, o=layer.out_features), str(layer.out_features),
                     f"{parameter_count(layer):,}", f"{parameter_count(getattr(se, name)):,}"])
    rows.append([t["total"], "", f"**{parameter_count(cnn):,}**", f"**{parameter_count(se):,}**"])
    rows.append([t["macs"], "", f"{multiply_adds(cnn):,}", f"{multiply_adds(se):,}"])
    return table(t["arch_head"], rows)


def data_markdown(provenance: dict, lang: str) -> str:
    t = Words(lang, "report")
    r = t["data_rows"]
    counts = provenance["counts"]
    per_class = sorted({f"{counts['train'][c]} / {counts['test'][c]}" for c in counts["train"]})
    md5 = provenance.get("source_md5")
    rows = [[r["source"], f"<code>{literal(provenance['source'])}</code>"],
            [r["layout"], layout_words(provenance["layout"], lang)],
            [r["md5"], f"<code>{literal(md5)}</code>" if md5 else "—"],
            [r["train"], f"{provenance['totals']['train']:,}"], [r["test"], f"{provenance['totals']['test']:,}"],
            [r["per_class"], literal(", ".join(per_class))],
            [r["sha"], f"<code>{literal(provenance['arrays_sha256'][:16])}…</code>"]]
    note = t["jpeg"] if provenance.get("jpeg_reencoded") else t["official"]
    return table(t["data_head"], rows) + "\n" + note + "\n"


def recipe_markdown(recipe: dict, lang: str) -> str:
    t = Words(lang, "report")
    r, tr = t["recipe_rows"], recipe["train"]
    norm = recipe["normalize"]
    rows = [
        [r["epochs"], tr["epochs"]],
        [r["batch_size"], tr["batch_size"]],
        [r["lr"], t("adam", lr=tr["lr"])],
        [r["plateau"], t("plateau", **tr["plateau"])],
        [r["monitor"], t(f"monitor_value.{tr['monitor']}", n=tr["val_per_class"])],
        [r["augment"], t("augment_value", **recipe["augment"])],
        [r["normalize"], f"{tuple(norm['mean'])} / {tuple(norm['std'])}"],
        [r["loss"], t["loss_value"]],
    ]
    return table(t["recipe_head"], rows)


def facts_markdown(summary: dict, lang: str) -> dict[str, str]:
    """One-sentence facts the FAQ quotes; each needs both models in the run."""
    if not {"cnn", "se"} <= set(summary):
        return {}
    t, cnn, se = Words(lang, "report"), summary["cnn"], summary["se"]
    extra = se["parameters"] - cnn["parameters"]
    gap = statistics.mean(se["final_test_acc"]) - statistics.mean(cnn["final_test_acc"])
    t_cnn, t_se = statistics.mean(cnn["seconds_per_epoch"]), statistics.mean(se["seconds_per_epoch"])
    return {
        "fact_se_params.md": t("fact_se_params", extra=extra, base=cnn["parameters"],
                               pct=100 * extra / cnn["parameters"]),
        "fact_gap.md": t("fact_gap", epochs="/".join(map(str, cnn["epochs"])), seeds=", ".join(map(str, cnn["seeds"])),
                         cnn=mean_std(cnn["final_test_acc"]), se=mean_std(se["final_test_acc"]), gap=gap),
        "fact_time.md": t("fact_time", cnn=t_cnn, se=t_se, pct=100 * (t_se / t_cnn - 1),
                          device=device_words(cnn["device"], lang)),
    }


def se_step_fact(run_dir: Path, model_config: dict, lang: str) -> str:
    """What SE costs per training step where the benchmark ran, beside what it adds in multiply-adds."""
    t = Words(lang, "report")
    speed = run_dir / "performance" / "speed.json"
    if not speed.exists():
        return t["fact_step_none"]
    b = atomic.read_json(speed, "the benchmark record of python -m se_attention.bench", ("models", "device"))
    if not {"cnn", "se"} <= set(b["models"]):
        return t["fact_step_none"]
    cnn, se = (b["models"][m]["ours"]["phases_ms"] for m in ("cnn", "se"))
    macs = {m: multiply_adds(build_model(m, **model_config)) for m in ("cnn", "se")}
    step = {m: p["forward"] + p["backward"] for m, p in (("cnn", cnn), ("se", se))}
    return t("fact_step", device=device_words(b["device"], lang), f_cnn=cnn["forward"], f_se=se["forward"],
             b_cnn=cnn["backward"], b_se=se["backward"], time_pct=100 * (step["se"] / step["cnn"] - 1),
             macs_pct=100 * (macs["se"] / macs["cnn"] - 1))


def specificity_markdown(values: list[float], seed: int, n: int, lang: str) -> str:
    t = Words(lang, "report")
    rises = all(b > a for a, b in zip(values, values[1:]))
    return t("specificity", values=", ".join(f"{v:.2f}" for v in values),
             blocks=", ".join(str(i + 1) for i in range(len(values))), seed=seed, n=n,
             verdict=t["spec_rises"] if rises else t["spec_flat"])


def cost_markdown(summary: dict, model_config: dict, lang: str) -> str:
    t = Words(lang, "report")
    rows = [[t["model"][m], f"{s['parameters']:,}", f"{multiply_adds(build_model(m, **model_config)):,}",
             mean_std(s["seconds_per_epoch"], 1), mean_std(s["images_per_second"], 0)] for m, s in summary.items()]
    return table(t["cost_head"], rows)


def pipeline_labels(record: dict, t: Words) -> dict:
    """The pipelines' names for a bench record: a record without ``engine`` is of our engine before the
    fused kernels (bench.py has recorded the engine since they became ours), and is called so."""
    return {"lesson": t["pipeline"]["lesson"], "ours": t["pipeline"]["ours" if "engine" in record else "ours_previous"]}


def speed_table(b: dict, pipelines: tuple[str, str], t: Words) -> str:
    """Images/s, share of the roof, memory and phases of each model in each of a benchmark's two pipelines."""
    labels = pipeline_labels(b, t)
    rows = []
    for model, m in b["models"].items():
        for name in pipelines:
            r = m[name]
            rows.append([t["model"][model], labels[name], f"{r['images_per_second']:.0f}",
                         f"{100 * r['images_per_second'] / m['roof_images_per_second']:.0f}%",
                         f"{r['peak_rss_mb']:.0f}", " / ".join(f"{v:.1f}" for v in r["phases_ms"].values())])
    return table(t["perf_head"], rows)


def speedup_words(b: dict, t: Words) -> str:
    """A benchmark record's speed-up: bold where its rounds agree; a record whose rounds disagree gets no bold
    headline, only a rounded, qualified figure (records from before the rounds were kept count as agreeing)."""
    return t("perf_speedup_rough" if b.get("trustworthy") is False else "perf_speedup", speedup=b["speedup"])


def median_ratios(b: dict, t: Words, sep: str = "; ") -> tuple[str, int]:
    """Each model's median ratio of a benchmark record with its quartiles, and how many rounds they come from."""
    spread = {m: v["ratio_spread"] for m, v in b["models"].items()}
    text = sep.join(f"{t['model'][m]} {s['median']:.2f} ({s['q1']:.2f}–{s['q3']:.2f})" for m, s in spread.items())
    return text, next(iter(spread.values()))["rounds"]


def processes_words(b: dict, t: Words) -> str:
    """How many processes measured each pipeline (records from before bench.py's --processes had one)."""
    return t("bench_processes", count=b.get("processes", 1))


BENCH_DATA = ("random images", "CIFAR-10")  # what bench.py records as its data, named in each language


def gpu_markdown(run_dir: Path, lang: str) -> str:
    """Our engine against the lesson's pipeline on a GPU (python -m se_attention.bench --device cuda), if recorded."""
    t = Words(lang, "report")
    path = run_dir / "performance" / "gpu_speed.json"
    if not path.exists():
        return t["no_gpu"] + "\n"
    b = atomic.read_json(path, "the GPU record of python -m se_attention.bench --device cuda",
                         ("models", "steps", "threads", "data", "device", "device_type", "cpu_model", "sgemm_gflops",
                          "speedup", "baseline", "candidate", "se_cnn_step_ratio", "trustworthy"))
    if (b["device_type"], b["baseline"], b["candidate"]) != ("cuda", "lesson", "ours"):
        raise ValueError(f"{path}: expected a GPU record (device_type cuda) of the lesson's pipeline against ours, "
                         f"found {b['device_type']}: {b['baseline']} against {b['candidate']}")
    rows = []
    for model, m in b["models"].items():
        for name in ("lesson", "ours"):
            r = m[name]
            rows.append([t["model"][model], pipeline_labels(b, t)[name], f"{r['images_per_second']:.0f}",
                         " / ".join(f"{v:.1f}" for v in r["phases_ms"].values()), f"{r['peak_gpu_mb']:.0f}"])
    ratios, rounds = median_ratios(b, t, t["list_sep"])
    cnn = b["models"]["cnn"]
    lesson, ours = cnn["lesson"]["phases_ms"], cnn["ours"]["phases_ms"]
    ours_model_ms = sum(v for k, v in ours.items() if k != "data")  # forward, backward, update of a batch of 64
    st = b["se_cnn_step_ratio"]
    return table(t["gpu_head"], rows) + "\n" + step_phases(b, ("lesson", "ours"), t, "gpu-steps", pipeline_labels(b, t)) + "\n" + t(
        "gpu_note", processes=processes_words(b, t), steps=literal(b["steps"]), threads=literal(b["threads"]),
        data=t["bench_data"][b["data"]] if b["data"] in BENCH_DATA else literal(b["data"]),
        device=literal(b["device"]), cpu=literal(b["cpu_model"]), gflops=b["sgemm_gflops"] / 1000,
        speedup=speedup_words(b, t),
        ratios=ratios, rounds=rounds,
        lesson_data=lesson["data"], lesson_step=sum(lesson.values()), ours_data=ours["data"],
        ours_model=ours_model_ms, roof=100 * 64 / (ours_model_ms / 1000) / cnn["roof_images_per_second"],
        step=st["median"], q1=st["q1"], q3=st["q3"],
        # Records from before the fused kernels have no engine: then ours made its batches on the GPU.
        ours_batch=t["gpu_batch_kernel"] if "engine" in b else t["gpu_batch_previous"],
        trust=t["perf_trusted"] if b["trustworthy"] else "") + "\n"  # a rough speed-up already says why


def sibling_record(record: Path, name) -> Path:
    """The record that ``record`` names as the source of its lesson's runs: a plain JSON file name beside it
    (it is shown in a command on the page, so nothing but letters, digits, ``_``, ``.`` and ``-``)."""
    if not (isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_.-]+\.json", name)):
        raise ValueError(f"{record}: expected lesson_runs_from to name a JSON file beside it, found {name!r}")
    return record.parent / name


def previous_engine_beside(source: Path, f: dict, t: Words) -> str:
    """The engine before this one, against the same lesson's runs (from the record they were taken from).

    Both engines draw the same batches from a seed, so a difference from the lesson that both show comes
    from what they share, not from the fused kernels. Empty if that record is not there or has no runs
    of its engine.
    """
    if not source.exists():
        return ""
    runs = atomic.read_json(source, "the faithfulness record of python -m se_attention.bench", ("runs",))["runs"]
    seeds = {r["seed"] for r in f["runs"]}
    final = final_accuracies([r for r in runs if r["seed"] in seeds])
    models = [m for m in dict.fromkeys(r["model"] for r in f["runs"])
              if (m, "ours") in final and (m, "lesson") in final]
    if not models:
        return ""
    diffs, _ = differences_from_lesson(final, models, "ours", t)
    return t["sentence_sep"] + t("faith_previous", source=literal(source.name), diffs=t["list_sep"].join(diffs))


def performance_markdown(run_dir: Path, lang: str) -> str:
    """The benchmark and faithfulness records that bench.py wrote, if any."""
    t = Words(lang, "report")
    speed, faith = run_dir / "performance" / "speed.json", run_dir / "performance" / "faithfulness.json"
    parts = []
    if speed.exists():
        b = atomic.read_json(speed, "the benchmark record of python -m se_attention.bench",
                             ("models", "steps", "threads", "data", "device", "sgemm_gflops", "speedup"))
        chart = step_phases(b, ("lesson", "ours"), t, "ours-steps", pipeline_labels(b, t))
        parts.append(speed_table(b, ("lesson", "ours"), t) + "\n" + chart + "\n" + t(
            "perf_note", processes=processes_words(b, t), steps=literal(b["steps"]), threads=literal(b["threads"]),
            data=literal(b["data"]),
            device=device_words(b["device"], lang), gflops=b["sgemm_gflops"], speedup=speedup_words(b, t)))
        if "se_cnn_step_ratio" in b:  # records of the round-by-round benchmark (median and quartiles)
            ratios, rounds = median_ratios(b, t)
            st, sd = b["se_cnn_step_ratio"], b["se_cnn_step_ratio_with_data"]
            parts[-1] += "\n\n" + t("perf_rounds", rounds=rounds, ratios=ratios,
                                     step=st["median"], q1=st["q1"], q3=st["q3"], with_data=sd["median"],
                                     trust=t["perf_trusted"] if b["trustworthy"] else t["perf_untrusted"])
    else:
        parts.append(t["no_bench"])
    if faith.exists():
        f = atomic.read_json(faith, "the faithfulness record of python -m se_attention.bench", ("runs", "epochs"))
        if f.get("lesson_runs_from"):  # the lesson's runs came from an earlier record, which is named
            source = sibling_record(faith, f["lesson_runs_from"])
            parts.append(faithfulness_markdown(f["runs"], f["epochs"], t, note="faith_note_from",
                                               labels=pipeline_labels(f, t), source=literal(source.name),
                                               source_file=source.name)
                         + previous_engine_beside(source, f, t))
        else:
            parts.append(faithfulness_markdown(f["runs"], f["epochs"], t, labels=pipeline_labels(f, t)))
    else:
        parts.append(t["no_faith"])
    return "\n\n".join(parts) + "\n"


def bf16_markdown(run_dir: Path, lang: str) -> str:
    """The opt-in bf16 study (python -m se_attention.bench --bf16): speed and accuracy against fp32, if recorded."""
    t = Words(lang, "report")
    speed, accuracy = run_dir / "performance" / "bf16_speed.json", run_dir / "performance" / "bf16_accuracy.json"
    if not speed.exists() and not accuracy.exists():
        return t["no_bf16"] + "\n"
    parts = []
    if speed.exists():
        b = atomic.read_json(speed, "the bf16 record of python -m se_attention.bench --bf16",
                             ("models", "steps", "threads", "device", "native_bf16", "trustworthy"))
        rows = [[t["model"][model], f"{m['ours']['images_per_second']:.0f}", f"{m['ours-bf16']['images_per_second']:.0f}",
                 f"{m['ratio_spread']['median']:.2f} ({m['ratio_spread']['q1']:.2f}–{m['ratio_spread']['q3']:.2f})"]
                for model, m in b["models"].items()]
        parts.append(table(t["bf16_speed_head"], rows) + "\n" + t(
            "bf16_speed_note", steps=literal(b["steps"]), device=device_words(b["device"], lang),
            hardware=t["bf16_native"] if b["native_bf16"] else t["bf16_emulated"],
            trust=t["perf_trusted"] if b["trustworthy"] else t["perf_untrusted"]))
    if accuracy.exists():
        a = atomic.read_json(accuracy, "the bf16 accuracy record of python -m se_attention.bench --bf16 --faithfulness",
                             ("runs", "epochs", "native_bf16"))
        final = {(r["model"], r["pipeline"], r["seed"]): r["test_acc"][-1] for r in a["runs"]}
        rows, verdicts = [], []
        for model in dict.fromkeys(r["model"] for r in a["runs"]):
            seeds = sorted(s for m, p, s in final if m == model and p == "ours" and (m, "ours-bf16", s) in final)
            if not seeds:
                continue
            fp32, bf16 = ([final[model, p, s] for s in seeds] for p in ("ours", "ours-bf16"))
            gap = gap_statistics(fp32, bf16)  # bf16 - fp32, paired by seed, as the zoo pairs modules
            se = gap["std"] / len(seeds) ** 0.5 if gap["std"] is not None else None
            rows.append([t["model"][model], literal(", ".join(map(str, seeds))), mean_std(fp32), mean_std(bf16),
                         f"{gap['mean']:+.2f}" + (f"{NBSP}±{NBSP}{se:.2f}" if se is not None else "")])
            if se is None:
                verdicts.append(t("bf16_verdict_one", model=t["model"][model]))
            elif abs(gap["mean"]) > 2 * se:
                verdicts.append(t("bf16_verdict_apart", model=t["model"][model], n=len(seeds)))
            else:
                verdicts.append(t("bf16_verdict_same", model=t["model"][model], n=len(seeds)))
        parts.append(table(t["bf16_accuracy_head"], rows) + "\n" + t(
            "bf16_accuracy_note", epochs=literal(a["epochs"]),
            hardware=t["bf16_native"] if a["native_bf16"] else t["bf16_emulated"],
            verdicts=t["sentence_sep"].join(verdicts)))
    return "\n\n".join(parts) + "\n"


def final_accuracies(runs: list[dict]) -> dict[tuple[str, str], list[float]]:
    """(model, pipeline) -> the test accuracy after the last epoch of each seed, in seed order."""
    final: dict[tuple[str, str], list[float]] = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        final.setdefault((r["model"], r["pipeline"]), []).append(r["test_acc"][-1])
    return final


def differences_from_lesson(final: dict, models: list[str], candidate: str, t: Words) -> tuple[list[str], list[str]]:
    """Per model, the candidate's mean minus the lesson's ± its standard error (words), and the models
    whose difference exceeds twice it."""
    diffs, apart = [], []
    for m in models:
        ours, lesson = final[m, candidate], final[m, "lesson"]
        diff = statistics.mean(ours) - statistics.mean(lesson)
        if min(len(ours), len(lesson)) < 2:
            diffs.append(t("faith_diff_one", model=t["model"][m], diff=diff))
            continue
        se = (statistics.variance(ours) / len(ours) + statistics.variance(lesson) / len(lesson)) ** 0.5
        diffs.append(t("faith_diff", model=t["model"][m], diff=diff, se=se))
        if abs(diff) > 2 * se:
            apart.append(t["model"][m])
    return diffs, apart


def faithfulness_markdown(runs: list[dict], epochs: int, t: Words, candidate: str = "ours",
                          note: str = "faith_note", labels: dict | None = None, **note_fields) -> str:
    """Each pipeline's test accuracy over seeds, and the candidate's (ours) minus the lesson's
    with its standard error.

    The runs of one seed are not a matched pair (each pipeline draws its own data order and
    augmentation), so the difference is one of means, judged against the spread between seeds.
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["model"], r["pipeline"]), []).append(r)
    rows, final = [], final_accuracies(runs)
    for (model, pipeline), group in groups.items():
        group = sorted(group, key=lambda r: r["seed"])
        curve = np.mean([r["test_acc"] for r in group], axis=0)
        last = final[model, pipeline]
        rows.append([t["model"][model], (labels or t["pipeline"])[pipeline], ", ".join(f"{a:.2f}" for a in curve),
                     ", ".join(f"{a:.2f} ({literal(r['seed'])})" for a, r in zip(last, group)),
                     mean_std(last)])
    models = [m for m in dict.fromkeys(r["model"] for r in runs) if (m, candidate) in final and (m, "lesson") in final]
    diffs, apart = differences_from_lesson(final, models, candidate, t)
    seeds = sorted({r["seed"] for r in runs})
    if any(min(len(final[m, candidate]), len(final[m, "lesson"])) < 2 for m in models):
        verdict = t["faith_verdict_one"]
    elif apart:
        verdict = t("faith_verdict_apart", models=", ".join(apart), n=len(seeds))
    else:
        verdict = t("faith_verdict_same", n=len(seeds))
    return table(t["faith_head"], rows) + "\n" + t(
        note, epochs=literal(epochs), seeds=", ".join(map(literal, seeds)),
        seed_args=" ".join(map(literal, seeds)), diffs=t["list_sep"].join(diffs), verdict=verdict, **note_fields)


def gate_activation_markdown(rows: list[dict], seed: int, lang: str) -> str:
    """Per SE block, how a channel's gate relates to its mean activation on the same image, and what it shows."""
    t = Words(lang, "report")
    body = [[t("corr_block", k=r["block"]), f"{r['images']:,}", f"{r['median']:+.2f}", f"[{r['q1']:+.2f}, {r['q3']:+.2f}]",
             f"{100 * r['share_negative']:.0f}%"] for r in rows]
    verdicts = []
    for r in rows:
        key = "corr_negative" if r["q3"] < 0 else "corr_positive" if r["q1"] > 0 else "corr_mixed"
        verdicts.append(t(key, k=r["block"], median=r["median"]))
    strongest = min(rows, key=lambda r: r["median"])
    meaning = t["corr_meaning_negative"] if strongest["q3"] < 0 else t["corr_meaning_other"]
    return (table(t["corr_head"], body) + "\n" + t("corr_note", seed=seed, n=f'{rows[0]["images"] + rows[0]["undefined"]:,}')
            + "\n\n" + t["sentence_sep"].join(verdicts + [meaning]) + "\n")


def schedule_markdown(schedule: dict[str, list[dict]], lang: str) -> str:
    """When each run first trained at a lower rate, its best epoch, and whether that was the last one."""
    t = Words(lang, "report")
    rows = []
    for model, runs in schedule.items():
        for r in runs:
            first = r["first_lower_lr_epoch"]
            rows.append([t["model"][model], r["seed"], t["never"] if first is None else first, r["drops"],
                         f"{r['lr_start']:g} → {r['lr_end']:g}", f"{r['best_epoch']} / {r['last_epoch']}",
                         t["yes_word"] if r["best_is_last"] else t["no_word"]])
    sentences = []
    for model, runs in schedule.items():
        firsts = [r["first_lower_lr_epoch"] for r in runs if r["first_lower_lr_epoch"] is not None]
        last = sum(r["best_is_last"] for r in runs)
        key = "sched_all_last" if last == len(runs) else "sched_none_last" if last == 0 else "sched_some_last"
        sentences.append(t(key, model=t["model"][model], n=len(runs), last=last,
                           lo=min(firsts) if firsts else "—", hi=max(firsts) if firsts else "—"))
    return table(t["sched_head"], rows) + "\n" + t["sentence_sep"].join(sentences + [t["sched_meaning"]]) + "\n"


def look_markdown(histories: dict[str, list[dict]], probes: dict[str, dict], seed: int, lang: str) -> dict[str, str]:
    """The numbers each Results figure's "what to look for" paragraph quotes, one snippet per figure."""
    t, classes = Words(lang, "report"), Words(lang, "figures")["classes"]
    parts = {}
    last = {m: [h["epochs"][-1] for h in runs] for m, runs in histories.items()}
    spans = "; ".join(t("look_span", model=t["model"][m], lo=min(r["test_acc"] for r in rs),
                        hi=max(r["test_acc"] for r in rs)) for m, rs in last.items())
    ranges = [(min(r["test_acc"] for r in rs), max(r["test_acc"] for r in rs)) for rs in last.values()]
    overlap = max(lo for lo, _ in ranges) <= min(hi for _, hi in ranges)
    parts["look_seed_band.md"] = t("look_seed_band", spans=spans,
                                   overlap=t["look_overlap"] if overlap else t["look_apart"])
    own = {m: next(h for h in runs if h["seed"] == seed) for m, runs in histories.items()}
    gaps = "; ".join(t("look_train_test", model=t["model"][m], train=h["epochs"][-1]["train_acc"],
                       test=h["epochs"][-1]["test_acc"]) for m, h in own.items())
    parts["look_epoch_curves.md"] = t("look_epoch_curves", seed=seed, gaps=gaps)
    per_class = []
    for m, p in probes.items():
        cm = np.asarray(p["confusion"], dtype=float)
        acc = 100 * np.diag(cm) / np.maximum(cm.sum(1), 1)
        off = cm / np.maximum(cm.sum(1, keepdims=True), 1) * 100
        np.fill_diagonal(off, -1)
        a, b = np.unravel_index(int(np.argmax(off)), off.shape)
        per_class.append(t("look_class", model=t["model"][m], best=classes[int(np.argmax(acc))],
                           best_acc=float(acc.max()), worst=classes[int(np.argmin(acc))],
                           worst_acc=float(acc.min()), a=classes[int(a)], b=classes[int(b)],
                           share=float(off[a, b])))
    parts["look_per_class.md"] = t("look_per_class", seed=seed, models=t["sentence_sep"].join(per_class))
    if "se" in probes:
        se = probes["se"]
        keys = sorted((k for k in se if k.startswith("gates_sample_")), key=lambda k: int(k.rsplit("_", 1)[1]))
        blocks = []
        for key in keys:
            g = np.asarray(se[key], dtype=np.float32)
            means = np.asarray(se[f"gates_class_mean_{key.rsplit('_', 1)[1]}"], dtype=np.float32)
            blocks.append(t("look_gate_block", k=int(key.rsplit("_", 1)[1]), median=float(np.median(g)),
                            low=100 * float((g < 0.1).mean()), high=100 * float((g > 0.9).mean()),
                            lo=float(means.min()), hi=float(means.max())))
        parts["look_gates.md"] = t("look_gates", seed=seed, n=f"{len(se[keys[0]]):,}", blocks=t["sentence_sep"].join(blocks))
    return {name: text + "\n" for name, text in parts.items()}
