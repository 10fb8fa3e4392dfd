# Shared names and helpers for the rules. Paths are relative to the repository root.

import json
import re
from pathlib import Path

from se_attention import atomic, attention, outputs, stamps  # noqa: E402
from se_attention.config import data_md5, recipe  # noqa: E402
from se_attention.data import download_name, is_url  # noqa: E402

RUN = config["run"]
RES = f"results/{RUN}"
DATA = f"data/{RUN}"
MODELS = config["models"]
# The lesson's pair, which the Results page, its figures and tables, the notebook and the Explorer
# describe; every other module of the registry is the Zoo page's (rules/zoo.smk reads MODELS).
PAPER_MODELS = [m for m in MODELS if m in ("cnn", "se")]
SEEDS = config["seeds"]
LANGS = config["figures"]["languages"]
FIGURE_SEED = SEEDS[0]  # the seed whose run the single-run figures show
# The site is never committed, so neither is its stamp: it lives beside the site it guards.
SITE_STAMPS = f"site/.code-hashes/{RUN}"

# Every stamp this parse computed, by file name; code_stamp (stamps.smk) writes the one a job needs.
# The default target asks for all of them. Snakemake plans a missing input only for a job that must
# run anyway, so a new stamp (changed code) is made, and its step rerun, because the target needs it.
STAMP_TEXT = {}


def code_stamp(step, module, settings, files=(), folder=f"{RES}/code-hashes", extra_modules=()):
    """The path of the stamp of ``step``'s code and settings; see se_attention.stamps.

    Pure: parsing the workflow (dry runs, refused runs, overrides) writes nothing. The path is
    named by the digest, so a changed module or setting is a missing stamp; code_stamp writes it,
    and the step that takes it as input runs again.
    """
    text = stamps.stamp_text(module, settings, files, root=Path(workflow.basedir), extra_modules=extra_modules)
    name = stamps.stamp_name(step, text)
    STAMP_TEXT[name] = (folder, text)
    return f"{folder}/{name}"


def stamp_paths():
    return [f"{folder}/{name}" for name, (folder, _) in sorted(STAMP_TEXT.items())]


def run_dir_of_stamp(wildcards, input):
    """results/<run>, from the job's own stamp (results/<run>/code-hashes/...): no hard-coded prefix."""
    return str(Path(input.stamp).parents[1])


def recipe_json():
    return json.dumps(recipe(config), sort_keys=True)


def train_threads():
    """Share the cores among the training jobs, which run side by side."""
    return max(1, workflow.cores // max(1, len(MODELS) * len(SEEDS)))
