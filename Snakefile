# SE channel attention on CIFAR-10: the workflow. Wiring only; the work lives in src/se_attention.
#
#   snakemake --cores 4                                   # everything: data, training, figures, site
#   snakemake --cores 2 --configfile config/smoke.yaml \
#       --config data_source=../shared/data/cifar10-jpeg.tar.gz   # tiny end-to-end run
#
# Data flow: download -> prepare -> train {model} x {seed} -> probe -> figures {lang}, tables, explorer -> site
#            diagrams {lang} (from the model definition alone) -> site

import sys

from snakemake.utils import min_version, validate

min_version("8.0")

sys.path.insert(0, f"{workflow.basedir}/src")
from se_attention.config import ConfigError, validate as validate_config  # noqa: E402


configfile: "config/config.yaml"


# Our validator first: it lists every bad key in one short message (Snakemake's shows only the
# first, inside a dump of the whole schema). Then Snakemake's own, which also fills defaults.
try:
    validate_config(config, "config/config.yaml + --configfile/--config overrides")
except ConfigError as exc:
    raise WorkflowError(str(exc))
validate(config, schema="src/se_attention/schema.yaml")


include: "rules/common.smk"
include: "rules/stamps.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/figures.smk"
include: "rules/zoo.smk"
include: "rules/explorer.smk"
include: "rules/site.smk"


# Every committed output, not only the site: Snakemake skips a missing file that no planned job
# needs, so an interrupted `-R prepare` or `-R figures` would otherwise never be finished.
rule all:
    input:
        rules.prepare.output,
        expand(rules.train.output, model=MODELS, seed=SEEDS),
        expand(rules.probe.output, model=MODELS, seed=FIGURE_SEED),
        rules.site.input.figures,
        rules.site.input.diagrams,
        rules.site.input.tables,
        rules.site.input.notebooks,
        rules.site.input.zoo,
        rules.site.input.explorer,
        stamp_paths(),
        rules.site.output,
