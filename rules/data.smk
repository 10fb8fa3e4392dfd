# CIFAR-10: download (URL sources only), then prepare one uint8 array file and its provenance.

SOURCE = config["data_source"]
MD5 = data_md5(config) or ""
SUBSET = config["subset"]
LOCAL_SOURCE = f"data/download/{Path(SOURCE).name}" if is_url(SOURCE) else SOURCE
PREPARED = f"{DATA}/cifar10.npz"
# Where the data comes from and how it is cut: the same for `prepare` and for ENSURE_DATA.
DATA_OPTIONS = " ".join(
    [f"--source '{SOURCE}' --local '{LOCAL_SOURCE}' --out {PREPARED}"]
    + ([f"--md5 {MD5}"] if MD5 else [])
    + ([f"--train-per-class {SUBSET['train_per_class']}"] if SUBSET["train_per_class"] else [])
    + ([f"--test-per-class {SUBSET['test_per_class']}"] if SUBSET["test_per_class"] else [])
)
# Jobs that read the prepared arrays depend on the committed provenance file, not on the npz
# (a cache that a fresh clone lacks; see se_attention.data.ensure_prepared). Each such job
# first runs this, which rebuilds a missing npz and checks it against the provenance.
ENSURE_DATA = f"{PYTHON} -m se_attention.data ensure {DATA_OPTIONS} --provenance {RES}/data/provenance.json"


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
        npz=PREPARED,
        provenance=f"{RES}/data/provenance.json",
    params:
        options=DATA_OPTIONS,
    log:
        f"{RES}/logs/prepare.log",
    shell:
        "{PYTHON} -m se_attention.data prepare {params.options} --provenance {output.provenance} 2> {log}"
