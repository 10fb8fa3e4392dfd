# The Explorer page's files: each model's seed run as an ONNX graph the reader's browser runs, the
# sample test images and their Grad-CAM. Needs the prepared data (the sample images), as the probe does.
#
# Outputs are update() files in views/, which sorts after runs/ (see figures.smk): a fresh clone
# does not replan them, and a failed export leaves the last good files.

EXPLORER = f"{RES}/views/explorer"
EXPLORER_PER_CLASS = 10  # sample test images per class: the first ones of the test set


rule explorer:
    input:
        weights=expand(f"{RES}/runs/{{model}}/seed{FIGURE_SEED}/model.pt", model=PAPER_MODELS),
        metrics=expand(f"{RES}/runs/{{model}}/seed{FIGURE_SEED}/metrics.json", model=PAPER_MODELS),
        provenance=PROVENANCE,
        # The catalogues give the class names the page shows in each language.
        stamp=code_stamp("explorer", "explorer", {"recipe": recipe(config), "models": PAPER_MODELS, "seed": FIGURE_SEED,
                                                  "per_class": EXPLORER_PER_CLASS}, LOCALES),
    output:
        onnx=update(expand(f"{EXPLORER}/{{model}}.onnx", model=PAPER_MODELS)),
        gradcam=update(expand(f"{EXPLORER}/gradcam_{{model}}.png", model=PAPER_MODELS)),
        samples=update(f"{EXPLORER}/samples.png"),
        manifest=update(f"{EXPLORER}/explorer.json"),
    params:
        data_args=lambda wildcards: DATA_ARGS,  # a function: values are not patterns
        prepared=lambda wildcards: PREPARED,
        recipe=recipe_json(),
        run_dir=run_dir_of_stamp,
        models=PAPER_MODELS,
        seed=FIGURE_SEED,
        per_class=EXPLORER_PER_CLASS,
        out=lambda wildcards, output: str(Path(output.manifest).parent),
    log:
        f"{RES}/logs/explorer.log",
    conda:
        "../environment.yml"
    shell:
        "PYTHONPATH=src python -m se_attention.data ensure {params.data_args:q} --provenance {input.provenance:q} "
        "2> {log:q} && "
        "PYTHONPATH=src python -m se_attention.explorer --recipe {params.recipe:q} --run-dir {params.run_dir:q} "
        "--models {params.models:q} --seed {params.seed} --data {params.prepared:q} --per-class {params.per_class} "
        "--out {params.out:q} >> {log:q} 2>&1"
