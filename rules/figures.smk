# Figures (one job per language) and tables, from committed results only: redrawing a plot never
# needs the dataset, a GPU or a training run.
#
# Figures and notebooks live in views/, which sorts after runs/ and tables/: git writes a fresh
# clone's files in path order, and Snakemake reruns a job whose input is newer than its output.
# So every committed output must sort after its inputs (code-hashes < data < runs < tables < views).
#
# Outputs are update(): Snakemake keeps the committed files while the job runs and puts them back
# if it fails, so a failed redraw (a truncated history.json, say) leaves the last good figures.

LOCALES = sorted(str(p) for p in Path("src/se_attention/locales").glob("*.yaml"))

FIGURE_NAMES = outputs.figure_names(PAPER_MODELS)
TABLE_NAMES = outputs.table_names(PAPER_MODELS)
# Written by `python -m se_attention.bench`, outside the workflow: optional, used when present. All of
# them, not a list of names: a faithfulness record may take its lesson runs from another record beside it.
BENCHMARKS = sorted(str(p) for p in Path(f"{RES}/performance").glob("*.json"))


rule figures:
    input:
        # Every seed's history: seed_band shows them all, so adding a seed redraws it.
        histories=expand(f"{RES}/runs/{{model}}/seed{{seed}}/history.json", model=PAPER_MODELS, seed=SEEDS),
        probes=expand(f"{RES}/runs/{{model}}/seed{FIGURE_SEED}/probe.npz", model=PAPER_MODELS),
        stamp=code_stamp("figures", "figures", {**config["figures"], "models": PAPER_MODELS, "seeds": SEEDS}, LOCALES),
    output:
        update(expand(f"{RES}/views/figures/{{{{lang}}}}/{{name}}.png", name=FIGURE_NAMES)),
    wildcard_constraints:
        lang="|".join(LANGS),
    params:
        run_dir=run_dir_of_stamp,
        models=PAPER_MODELS,
        seeds=SEEDS,
        figure_seed=FIGURE_SEED,
        channels=config["figures"]["channels_shown"],
        dpi=config["figures"]["dpi"],
    log:
        f"{RES}/logs/figures_{{lang}}.log",
    conda:
        "../environment.yml"
    shell:
        "PYTHONPATH=src python -m se_attention.figures --run-dir {params.run_dir:q} --models {params.models:q} --seed {params.figure_seed} "
        "--seeds {params.seeds} --lang {wildcards.lang} --channels-shown {params.channels} --dpi {params.dpi} "
        "> {log:q} 2>&1"


# The diagrams (SE block, its place in this CNN, in a ResNet block, after the conv or the pool) are
# drawn from the model definition and the recipe's model settings alone: no run, no data.
rule diagrams:
    input:
        stamp=code_stamp("diagrams", "diagrams", {"model": config["model"]}, LOCALES, extra_modules=["se"]),
    output:
        update(expand(f"{RES}/views/figures/{{{{lang}}}}/{{name}}.svg", name=outputs.DIAGRAM_NAMES)),
    wildcard_constraints:
        lang="|".join(LANGS),
    params:
        settings=json.dumps(config["model"], sort_keys=True),
        out_dir=lambda wildcards, output: str(Path(output[0]).parent),
    log:
        f"{RES}/logs/diagrams_{{lang}}.log",
    conda:
        "../environment.yml"
    shell:
        "PYTHONPATH=src python -m se_attention.diagrams --model-settings {params.settings:q} --lang {wildcards.lang} "
        "--out-dir {params.out_dir:q} > {log:q} 2>&1"


rule report:
    input:
        metrics=expand(f"{RES}/runs/{{model}}/seed{{seed}}/metrics.json", model=PAPER_MODELS, seed=SEEDS),
        # The learning-rate schedules and the "what to look for" paragraphs read every history.
        histories=expand(f"{RES}/runs/{{model}}/seed{{seed}}/history.json", model=PAPER_MODELS, seed=SEEDS),
        probes=expand(f"{RES}/runs/{{model}}/seed{FIGURE_SEED}/probe.npz", model=PAPER_MODELS),
        benchmarks=BENCHMARKS,
        provenance=PROVENANCE,
        # The benchmark files come from outside the workflow: their bytes are part of the stamp.
        stamp=code_stamp("report", "report", {"languages": LANGS, "models": PAPER_MODELS, "seeds": SEEDS},
                         LOCALES + BENCHMARKS),
    output:
        update(expand(f"{RES}/tables/{{lang}}/{{name}}.md", lang=LANGS, name=TABLE_NAMES)),
        summary=update(f"{RES}/tables/summary.json"),
    params:
        run_dir=run_dir_of_stamp,
        models=PAPER_MODELS,
        seeds=SEEDS,
        langs=LANGS,
    log:
        f"{RES}/logs/report.log",
    conda:
        "../environment.yml"
    shell:
        "PYTHONPATH=src python -m se_attention.report --run-dir {params.run_dir:q} --models {params.models:q} --seeds {params.seeds} "
        "--langs {params.langs:q} > {log:q} 2>&1"
