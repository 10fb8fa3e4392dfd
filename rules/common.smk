# Shared names and helpers for the rules. Paths are relative to the repository root.

import hashlib
import json
import sys
from pathlib import Path

from se_attention import atomic  # noqa: E402
from se_attention.config import data_md5, recipe  # noqa: E402
from se_attention.data import is_url  # noqa: E402

RUN = config["run"]
RES = f"results/{RUN}"
DATA = f"data/{RUN}"
PKG = "src/se_attention"
MODELS = config["models"]
SEEDS = config["seeds"]
LANGS = config["figures"]["languages"]
FIGURE_SEED = SEEDS[0]  # the seed whose run the single-run figures show
PYTHON = "PYTHONPATH=src python"


def code_stamp(step, modules, settings):
    """A small file that changes exactly when a step's code or settings change; use it as input.

    Snakemake cannot see the modules a step imports, and code files as plain inputs go wrong
    in a fresh clone: git checks out src/ after results/, so every committed result looks older
    than its code and the whole paper would be retrained. Params alone need .snakemake metadata,
    which a fresh clone lacks, so a learner's edit to the model would be ignored. Instead the
    stamp lists a digest of each module and of the settings, and is rewritten (when parsing
    the workflow) only if that text changed: it is older than committed results in a clone
    (code-hashes/ sorts before the results it guards) and newer than them after any edit.
    """
    lines = [f"{hashlib.sha256(Path(workflow.basedir, PKG, m + '.py').read_bytes()).hexdigest()}  {PKG}/{m}.py"
             for m in modules]
    lines.append("settings " + json.dumps(settings, sort_keys=True))
    text = "\n".join(lines) + "\n"
    path = Path(workflow.basedir, RES, "code-hashes", f"{step}.txt")
    if not path.exists() or path.read_text() != text:
        atomic.write_text(path, text)
    return f"{RES}/code-hashes/{step}.txt"


def recipe_json():
    return json.dumps(recipe(config), sort_keys=True)


def train_threads():
    """Share the cores among the training jobs, which run side by side."""
    return max(1, workflow.cores // max(1, len(MODELS) * len(SEEDS)))
