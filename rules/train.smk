# Training (one job per model and seed) and the probe that keeps what the figures need.
# The probe file sits in the run folder (runs/<model>/seed<k>/probe.npz) beside the weights it
# was made from.

RUN_DIR = f"{RES}/runs/{{model}}/seed{{seed}}"
# One training stamp per model: its code is the training code plus its own attention module, so
# adding a module to the zoo plans that module's runs and retrains nothing else.
TRAIN_STAMPS = {
    model: code_stamp(f"train_{model}", "train", {**recipe(config), "attention": attention.stamp_settings(model)},
                      extra_modules=attention.stamp_modules(model))
    for model in MODELS
}


rule train:
    input:
        # The provenance, not the npz: see data.smk.
        provenance=PROVENANCE,
        stamp=lambda wildcards: TRAIN_STAMPS[wildcards.model],
    output:
        model=f"{RUN_DIR}/model.pt",
        history=f"{RUN_DIR}/history.json",
        metrics=f"{RUN_DIR}/metrics.json",
    params:
        data_args=lambda wildcards: DATA_ARGS,  # a function: values are not patterns
        prepared=lambda wildcards: PREPARED,
        recipe=recipe_json(),
        out=RUN_DIR,
    wildcard_constraints:
        model="|".join(MODELS),
        seed=r"\d+",
    threads: train_threads()
    log:
        f"{RES}/logs/train_{{model}}_seed{{seed}}.log",
    benchmark:
        f"{RUN_DIR}/benchmark.tsv"
    conda:
        "../environment.yml"
    shell:
        "PYTHONPATH=src python -m se_attention.data ensure {params.data_args:q} --provenance {input.provenance:q} "
        "2> {log:q} && "
        "PYTHONPATH=src python -m se_attention.train --recipe {params.recipe:q} --model {wildcards.model} "
        "--seed {wildcards.seed} --data {params.prepared:q} --data-provenance {input.provenance:q} "
        "--out {params.out:q} --threads {threads} 2>> {log:q}"


rule probe:
    input:
        weights=rules.train.output.model,
        provenance=PROVENANCE,
        stamp=code_stamp("probe", "probe", {"recipe": recipe(config), "probe": config["probe"]}),
    output:
        f"{RUN_DIR}/probe.npz",
    params:
        data_args=lambda wildcards: DATA_ARGS,  # a function: values are not patterns
        prepared=lambda wildcards: PREPARED,
        recipe=recipe_json(),
        samples=config["probe"]["sample_images"],
    log:
        f"{RES}/logs/probe_{{model}}_seed{{seed}}.log",
    conda:
        "../environment.yml"
    shell:
        "PYTHONPATH=src python -m se_attention.data ensure {params.data_args:q} --provenance {input.provenance:q} "
        "2> {log:q} && "
        "PYTHONPATH=src python -m se_attention.probe --recipe {params.recipe:q} --model {wildcards.model} "
        "--weights {input.weights:q} --data {params.prepared:q} --sample-images {params.samples} "
        "--out {output:q} 2>> {log:q}"
