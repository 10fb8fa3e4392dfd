"""Write every table of a run, in each language, from the metrics files it wrote.

    python -m se_attention.report --run-dir results/paper --models cnn se --seeds 0 1 2 --langs zh en

stats.py computes, tables.py words; this file reads the run's files and writes the tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import atomic
from .i18n import languages
from .runs import load_histories, load_metrics, load_probes
from .stats import (gap_statistics, gate_activation_correlation, paired_final_accuracies, schedule_summary,
                    specificity, summarize)
from .tables import (SENET_CIFAR10_ERROR, SENET_CITATION, architecture_markdown, bf16_markdown, cost_markdown,
                     data_markdown, facts_markdown, gap_markdown, gap_verdict, gate_activation_markdown, gpu_markdown,
                     literature_markdown, look_markdown, metrics_markdown, performance_markdown,
                     recipe_markdown, schedule_markdown, se_step_fact, seeds_markdown, specificity_markdown)


PROVENANCE_KEYS = ("source", "layout", "counts", "totals", "arrays_sha256")


def write_reports(run_dir: Path, models: list[str], seeds: list[int], langs: list[str]) -> list[Path]:
    metrics = load_metrics(run_dir, models, seeds)
    histories = load_histories(run_dir, models, seeds)
    schedule = schedule_summary(histories)
    # The figures' seed: the paragraphs beside the figures quote the run the figures show.
    probes = load_probes(run_dir, models, seeds[0])
    spec = corr = None
    if "se" in models:
        probe = probes["se"]
        spec = specificity(probe)
        corr = gate_activation_correlation(probe)
        n_gates = len(probe["gates_sample_1"])
    recipe = next(iter(metrics.values()))[0]["provenance"]["recipe"]
    provenance = atomic.read_json(run_dir / "data" / "provenance.json", "the data provenance of the prepare step",
                                  PROVENANCE_KEYS)
    summary = summarize(metrics, histories)
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
            "bf16.md": bf16_markdown(run_dir, lang),
            "gpu.md": gpu_markdown(run_dir, lang),
            "schedule.md": schedule_markdown(schedule, lang),
            **look_markdown(histories, probes, seeds[0], lang),
            **{name: text + "\n" for name, text in facts_markdown(summary, lang).items()},
        }
        if spec is not None:
            parts["specificity.md"] = specificity_markdown(spec, seeds[0], n_gates, lang) + "\n"
            parts["gate_activation.md"] = gate_activation_markdown(corr, seeds[0], lang)
        parts["seeds.md"] = seeds_markdown(summary, lang)
        if gap is not None:
            parts["gap.md"] = gap_markdown(summary, gap, lang)
            parts["verdict.md"] = gap_verdict(gap, lang) + "\n"
            parts["literature.md"] = literature_markdown(summary, recipe, lang)
            parts["fact_se_step.md"] = se_step_fact(run_dir, recipe["model"], lang) + "\n"
        for name, text in parts.items():
            atomic.write_text(out / name, text)
            written.append(out / name)
    atomic.write_json(run_dir / "tables" / "summary.json", {
        "recipe_epochs": recipe["train"]["epochs"], "models": summary, "gap_se_minus_cnn": gap,
        "gate_class_specificity": spec, "gate_activation_correlation": corr, "lr_schedule": schedule,
        "data": provenance,
        "literature_senet_cifar10_error": {"source": SENET_CITATION, "errors": SENET_CIFAR10_ERROR}})
    return written + [run_dir / "tables" / "summary.json"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.report", description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--seeds", nargs="+", type=int, required=True)
    p.add_argument("--langs", nargs="+", required=True, choices=languages())
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
