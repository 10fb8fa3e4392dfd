# SE channel attention on CIFAR-10: the workflow. Wiring only; the work lives in src/se_attention.
#
#   snakemake --cores 4                                   # everything: data, training, figures, site
#   snakemake --cores 2 --configfile config/smoke.yaml \
#       --config data_source=../shared/data/cifar10-jpeg.tar.gz   # tiny end-to-end run
#
# Data flow: download -> prepare -> train {model} x {seed} -> probe -> figures {lang}, tables -> site

from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config/config.yaml"


validate(config, schema="config/schema.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/figures.smk"
include: "rules/site.smk"


rule all:
    input:
        rules.site.output,
