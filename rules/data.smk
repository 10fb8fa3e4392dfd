# CIFAR-10: download (URL sources only), then prepare the provenance of one uint8 array file.
#
# Every value from the configuration reaches the shell through params with :q (shell-quoted), never
# pasted into the command: a ' $ & or > in a path or URL is a character, not a command.

SOURCE = config["data_source"]
MD5 = data_md5(config) or ""
SUBSET = config["subset"]
# One local name per URL (two archives called cifar.tar.gz from two hosts must not share a file).
LOCAL_SOURCE = f"data/download/{download_name(SOURCE)}" if is_url(SOURCE) else SOURCE
PREPARED = f"{DATA}/cifar10.npz"
PROVENANCE = f"{RES}/data/provenance.json"
# Where the data comes from and how it is cut: the same for `prepare` and for ENSURE_DATA.
DATA_ARGS = (
    ["--source", SOURCE, "--local", LOCAL_SOURCE, "--out", PREPARED]
    + (["--md5", MD5] if MD5 else [])
    + (["--train-per-class", str(SUBSET["train_per_class"])] if SUBSET["train_per_class"] else [])
    + (["--test-per-class", str(SUBSET["test_per_class"])] if SUBSET["test_per_class"] else [])
)
# Jobs that read the prepared arrays depend on the committed provenance file, not on the npz
# (a cache that a fresh clone lacks; see se_attention.data.ensure_prepared). Each such job first
# runs `se_attention.data ensure`, which rebuilds a missing or stale npz and checks it against
# the provenance.


if is_url(SOURCE):

    rule download:
        output:
            LOCAL_SOURCE,
        params:
            url=lambda wildcards: SOURCE,  # a function: braces in a URL are not wildcards
            md5=["--md5", MD5] if MD5 else [],
        log:
            "data/logs/download.log",
        conda:
            "../environment.yml"
        shell:
            "PYTHONPATH=src python -m se_attention.data download --url {params.url:q} {params.md5:q} --out {output:q} 2> {log:q}"


rule prepare:
    input:
        # ancient(): a copy of the same archive (CI and each new machine copy it afresh) has a new
        # mtime but the same bytes, and must not retrain every model. The checksum read is in the
        # provenance file; after replacing the archive's content in place, force `-R prepare`.
        source=ancient(LOCAL_SOURCE),
        # Not the source's name: committed results must survive a clone that names another copy of
        # CIFAR-10 (the default URL, say). What was read is in the provenance file's checksums.
        stamp=code_stamp("prepare", "data", {"subset": SUBSET}),
    output:
        # Only the provenance: the npz beside it is a cache (not committed), rebuilt by ENSURE_DATA.
        # As an output, its absence in every fresh clone would replan prepare and every training.
        provenance=PROVENANCE,
    params:
        data_args=lambda wildcards: DATA_ARGS,  # a function: values are not patterns
    log:
        f"{RES}/logs/prepare.log",
    conda:
        "../environment.yml"
    shell:
        "PYTHONPATH=src python -m se_attention.data prepare {params.data_args:q} --provenance {output.provenance:q} 2> {log:q}"
