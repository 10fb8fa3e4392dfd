# Figures (one job per language) and tables, from committed results only: redrawing a plot never
# needs the dataset, a GPU or a training run.

FIGURE_NAMES = ["iteration_loss", "epoch_curves", "feature_maps", "se_block", "gradcam", "per_class_accuracy",
                "confusion", "seed_band"]
if "se" in MODELS:
    FIGURE_NAMES += ["channel_attention", "excitation_lines", "se_rescaling", "gate_distribution"]
TABLE_NAMES = ["metrics", "seeds", "architecture", "data", "recipe", "cost", "performance"] + (
    ["fact_se_params", "fact_gap", "fact_time", "gap", "verdict", "literature"] if {"cnn", "se"} <= set(MODELS) else []
) + (["specificity"] if "se" in MODELS else [])


rule figures:
    input:
        # Every seed's history: seed_band shows them all, so adding a seed redraws it.
        histories=expand(f"{RES}/runs/{{model}}/seed{{seed}}/history.json", model=MODELS, seed=SEEDS),
        probes=expand(f"{RES}/runs/{{model}}/seed{FIGURE_SEED}/probe.npz", model=MODELS),
        # The model and seed lists are settings too: without .snakemake metadata (a fresh clone),
        # a new seed's missing history alone would not rerun a figure that is newer than the rest.
        stamp=code_stamp("figures", ["figures", "fonts", "__init__"],
                         {**config["figures"], "models": MODELS, "seeds": SEEDS}),
    output:
        expand(f"{RES}/figures/{{{{lang}}}}/{{name}}.png", name=FIGURE_NAMES),
    wildcard_constraints:
        lang="|".join(LANGS),
    params:
        models=" ".join(MODELS),
        seeds=" ".join(map(str, SEEDS)),
        channels=config["figures"]["channels_shown"],
        dpi=config["figures"]["dpi"],
    log:
        f"{RES}/logs/figures_{{lang}}.log",
    shell:
        "{PYTHON} -m se_attention.figures --run-dir {RES} --models {params.models} --seed {FIGURE_SEED} "
        "--seeds {params.seeds} --lang {wildcards.lang} --channels-shown {params.channels} --dpi {params.dpi} "
        "> {log} 2>&1"


rule report:
    input:
        metrics=expand(f"{RES}/runs/{{model}}/seed{{seed}}/metrics.json", model=MODELS, seed=SEEDS),
        probe=[f"{RES}/runs/se/seed{FIGURE_SEED}/probe.npz"] if "se" in MODELS else [],
        # Written by `python -m se_attention.bench`, outside the workflow: optional, used when present.
        benchmarks=[p for p in (f"{RES}/performance/speed.json", f"{RES}/performance/faithfulness.json") if Path(p).exists()],
        provenance=f"{RES}/data/provenance.json",
        stamp=code_stamp("report", ["report", "cnn", "se", "__init__"],
                         {"languages": LANGS, "models": MODELS, "seeds": SEEDS}),
    output:
        expand(f"{RES}/tables/{{lang}}/{{name}}.md", lang=LANGS, name=TABLE_NAMES),
        summary=f"{RES}/tables/summary.json",
    params:
        models=" ".join(MODELS),
        seeds=" ".join(map(str, SEEDS)),
        langs=" ".join(LANGS),
    log:
        f"{RES}/logs/report.log",
    shell:
        "{PYTHON} -m se_attention.report --run-dir {RES} --models {params.models} --seeds {params.seeds} "
        "--langs {params.langs} > {log} 2>&1"
