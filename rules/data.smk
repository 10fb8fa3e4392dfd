# CIFAR-10: download (URL sources only), then prepare one uint8 array file and its provenance.

SOURCE = config["data_source"]
MD5 = data_md5(config) or ""
SUBSET = config["subset"]
LOCAL_SOURCE = f"data/download/{Path(SOURCE).name}" if is_url(SOURCE) else SOURCE


if is_url(SOURCE):

    rule download:
        output:
            LOCAL_SOURCE,
        params:
            url=SOURCE,
            md5=f"--md5 {MD5}" if MD5 else "",
        log:
            "data/logs/download.log",
        shell:
            "{PYTHON} -m se_attention.data download --url '{params.url}' {params.md5} --out {output} 2> {log}"


rule prepare:
    input:
        # ancient(): a copy of the same archive (CI and each new machine copy it afresh) has a new
        # mtime but the same bytes, and must not retrain every model. The checksum read is in the
        # provenance file; after replacing the archive's content in place, force `-R prepare`.
        source=ancient(LOCAL_SOURCE),
        # Not the source itself: committed results must survive a clone that names another copy of
        # CIFAR-10 (the default URL, say). What was read is in the provenance file's checksums.
        stamp=code_stamp("prepare", ["data"], {"subset": SUBSET}),
    output:
        npz=f"{DATA}/cifar10.npz",
        provenance=f"{RES}/data/provenance.json",
    params:
        source=SOURCE,
        options=" ".join(
            ([f"--md5 {MD5}"] if MD5 else [])
            + ([f"--train-per-class {SUBSET['train_per_class']}"] if SUBSET["train_per_class"] else [])
            + ([f"--test-per-class {SUBSET['test_per_class']}"] if SUBSET["test_per_class"] else [])
        ),
    log:
        f"{RES}/logs/prepare.log",
    shell:
        "{PYTHON} -m se_attention.data prepare --source '{params.source}' --local '{input.source}' "
        "{params.options} --out {output.npz} --provenance {output.provenance} 2> {log}"
