# The attention zoo: every attention model of the run against the lesson's CNN, paired by seed
# (se_attention.zoo): a table with Holm-corrected tests, verdicts, gate statistics and figures.
# Only with the CNN and at least one attention model in `models`.

ZOO_PROBED = [m for m in MODELS if m != "cnn"]

if outputs.has_zoo(MODELS):

    rule zoo:
        input:
            metrics=expand(f"{RES}/runs/{{model}}/seed{{seed}}/metrics.json", model=MODELS, seed=SEEDS),
            histories=expand(f"{RES}/runs/{{model}}/seed{{seed}}/history.json", model=MODELS, seed=SEEDS),
            probes=expand(f"{RES}/runs/{{model}}/seed{FIGURE_SEED}/probe.npz", model=ZOO_PROBED),
            # The registry's names too: the page lists the modules not yet trained.
            stamp=code_stamp("zoo", "zoo", {"models": MODELS, "seeds": SEEDS, "languages": LANGS,
                                            "dpi": config["figures"]["dpi"], "registry": list(attention.REGISTRY)},
                             LOCALES),
        output:
            # tables/ and views/ sort after runs/: a fresh clone's file times keep these current.
            summary=update(f"{RES}/tables/zoo.json"),
            tables=update(expand(f"{RES}/tables/{{lang}}/{{name}}.md", lang=LANGS, name=outputs.ZOO_TABLES)),
            figures=update(expand(f"{RES}/views/figures/{{lang}}/{{name}}.png", lang=LANGS, name=outputs.ZOO_FIGURES)),
        params:
            run_dir=run_dir_of_stamp,
            models=MODELS,
            seeds=SEEDS,
            seed=FIGURE_SEED,
            langs=LANGS,
            dpi=config["figures"]["dpi"],
        log:
            f"{RES}/logs/zoo.log",
        conda:
            "../environment.yml"
        shell:
            "PYTHONPATH=src python -m se_attention.zoo --run-dir {params.run_dir:q} --models {params.models:q} "
            "--seeds {params.seeds} --seed {params.seed} --langs {params.langs:q} --dpi {params.dpi} > {log:q} 2>&1"
