# Training (one job per model and seed) and the probe that keeps what the figures need.
# Each stamp lists the modules whose code decides the numbers; data loading acts through the
# prepared file (an input), and provenance or file-writing helpers never change a result.
# The probe file sits in the run folder (runs/<model>/seed<k>/probe.npz), after model.pt in
# checkout order, so a fresh clone never sees it as older than the weights it was made from.

RUN_DIR = f"{RES}/runs/{{model}}/seed{{seed}}"


rule train:
    input:
        # The provenance, not the npz: see ENSURE_DATA in data.smk.
        provenance=f"{RES}/data/provenance.json",
        stamp=code_stamp("train", ["train", "augment", "cnn", "se"],
                         recipe(config)),
    output:
        model=f"{RUN_DIR}/model.pt",
        history=f"{RUN_DIR}/history.json",
        metrics=f"{RUN_DIR}/metrics.json",
    params:
        recipe=recipe_json(),
        out=RUN_DIR,
    wildcard_constraints:
        model="|".join(MODELS),
        seed=r"\d+",
    threads: train_threads()
    log:
        f"{RES}/logs/train_{{model}}_seed{{seed}}.log",
    benchmark:
        # In the run folder, which sorts after code-hashes/: a clone must not see it older than its stamp.
        f"{RUN_DIR}/benchmark.tsv"
    shell:
        "{ENSURE_DATA} 2> {log} && "
        "{PYTHON} -m se_attention.train --recipe '{params.recipe}' --model {wildcards.model} "
        "--seed {wildcards.seed} --data {PREPARED} --data-provenance {input.provenance} "
        "--out {params.out} --threads {threads} 2>> {log}"


rule probe:
    input:
        weights=rules.train.output.model,
        provenance=f"{RES}/data/provenance.json",
        stamp=code_stamp("probe", ["probe", "augment", "cnn", "se"],
                         {"recipe": recipe(config), "probe": config["probe"]}),
    output:
        f"{RUN_DIR}/probe.npz",
    params:
        recipe=recipe_json(),
        samples=config["probe"]["sample_images"],
    log:
        f"{RES}/logs/probe_{{model}}_seed{{seed}}.log",
    shell:
        "{ENSURE_DATA} 2> {log} && "
        "{PYTHON} -m se_attention.probe --recipe '{params.recipe}' --model {wildcards.model} "
        "--weights {input.weights} --data {PREPARED} --sample-images {params.samples} "
        "--out {output} 2>> {log}"
