"""What Snakemake plans in a fresh clone of the committed results, after dry runs, refused runs,
overrides, edits and undone edits. Each test works in its own `git clone`, so file times are those
of a real checkout (git writes files in path order) and `git status` shows every write.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PAPER_RUNS, copy_worktree, link_node_modules, models_using, snakemake
from test_workflow import planned_jobs

# site/ is a build product, never committed, and so is the stamp of the pages it was built from.
# Each test clones the committed state and dry-runs Snakemake two or three times: seconds each.
pytestmark = pytest.mark.slow

ONLY_THE_SITE = {"code_stamp": 1, "site": 1, "all": 1}
RETRAIN = {"train", "probe", "prepare", "download"}


@pytest.fixture(scope="module")
def committed(tmp_path_factory) -> Path:
    """The working tree as one commit (what a push would hold), to clone from."""
    repo = copy_worktree(tmp_path_factory.mktemp("committed"))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "state under test"], cwd=repo, check=True)
    return repo


@pytest.fixture
def clone(committed, tmp_path) -> Path:
    subprocess.run(["git", "clone", "-q", str(committed), str(tmp_path / "clone")], check=True)
    link_node_modules(tmp_path / "clone")  # what `npm ci` gives a clone (ignored by git)
    return tmp_path / "clone"


def git_status(repo: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo,
                          capture_output=True, text=True, check=True).stdout


def test_a_fresh_clone_plans_only_the_site(clone):
    assert planned_jobs(clone) == ONLY_THE_SITE


def test_a_dry_run_with_an_override_writes_nothing(clone):
    override = clone.parent / "three_epochs.yaml"
    override.write_text("train: {epochs: 3}\n")
    jobs = planned_jobs(clone, "--configfile", str(override))
    assert jobs["train"] == PAPER_RUNS, jobs  # the override is a real change: every run would retrain
    assert git_status(clone) == ""
    assert planned_jobs(clone) == ONLY_THE_SITE


def test_a_run_refused_by_the_lock_writes_nothing(clone):
    locks = clone / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("site/paper\n")  # what a running (or killed) Snakemake leaves
    more_seeds = clone.parent / "four_seeds.yaml"
    more_seeds.write_text("seeds: [0, 1, 2, 3]\n")
    out = snakemake(clone, "--configfile", str(more_seeds), check=False)
    assert out.returncode != 0 and "--unlock" in out.stdout + out.stderr
    assert git_status(clone) == ""
    subprocess.run(["snakemake", "--unlock", "--cores", "1"], cwd=clone, check=True, capture_output=True)
    assert planned_jobs(clone) == ONLY_THE_SITE


def test_looking_at_a_change_and_undoing_it_plans_nothing(clone):
    eca = clone / "src" / "se_attention" / "eca.py"
    eca.write_text(eca.read_text() + "\nEDITED = True\n")
    jobs = planned_jobs(clone)
    # The ECA module is the ECA model's alone: its runs retrain, the other models' do not.
    assert models_using("eca") == ["eca"]
    assert planned_runs(clone) == {("eca", str(s)) for s in (0, 1, 2)}
    assert jobs["probe"] == 1 and "prepare" not in jobs, jobs  # its seed-0 probe
    subprocess.run(["git", "checkout", "--", str(eca)], cwd=clone, check=True)
    assert planned_jobs(clone) == ONLY_THE_SITE
    assert git_status(clone) == ""


def planned_runs(repo: Path, *args: str) -> set[tuple[str, str]]:
    """(model, seed) of every train job a dry run plans."""
    out = snakemake(repo, "-n", *args).stdout
    return {(m, s) for block in re.split(r"\n\s*\n", out) if re.search(r"^(local)?rule train:", block, re.M)
            for m, s in re.findall(r"wildcards: model=(\w+), seed=(\d+)", block)}


TOY_MODULE = '''"""A toy channel attention: one learned gate per channel, the same for every image."""

import torch
from torch import nn


class ToyGate(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.logit = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return x * torch.sigmoid(self.logit)[None, :, None, None]

    def multiply_adds(self, side: int) -> int:
        return self.logit.numel() * side * side
'''


def test_adding_a_module_plans_only_its_own_runs(clone):
    """A new attention module is one file and one registry line; with it in `models`, a dry run
    plans its runs and no other: the committed CNN and SE runs stay current."""
    pkg = clone / "src" / "se_attention"
    (pkg / "toy.py").write_text(TOY_MODULE)
    registry = pkg / "attention.py"
    text = registry.read_text()
    assert "REGISTRY: dict[str, Entry] = {\n" in text
    registry.write_text(text.replace("REGISTRY: dict[str, Entry] = {\n",
                                     'REGISTRY: dict[str, Entry] = {\n    "toy": Entry("toy", "ToyGate"),\n'))
    with_toy = clone.parent / "with_toy.yaml"
    with_toy.write_text("models: [cnn, se, toy]\n")
    assert planned_runs(clone, "--configfile", str(with_toy)) == {("toy", "0"), ("toy", "1"), ("toy", "2")}
    assert planned_runs(clone) == set()  # the registry line alone changes no committed model's stamp
    # ... and redoes only the zoo's tables (they name the registry's untrained modules) and the site.
    assert planned_jobs(clone) == {"code_stamp": 2, "zoo": 1, "site": 1, "all": 1}


def test_comments_docstrings_and_line_endings_are_not_a_change(clone):
    train = clone / "src" / "se_attention" / "train.py"
    text = train.read_text()
    text = text.replace('"""', '"""Reworded. ', 1)  # the module docstring
    text = re.sub(r"^(\s*)# ", r"\1# reworded: ", text, count=3, flags=re.M)  # three comments
    train.write_bytes((text + "\n\n# a new comment\n").replace("\n", "\r\n").encode())
    assert planned_jobs(clone) == ONLY_THE_SITE


def test_a_missing_committed_output_is_rebuilt(clone):
    """What a killed `snakemake -R figures` or `-R prepare` leaves: outputs removed, nothing else."""
    (clone / "results/paper/views/figures/en/confusion.png").unlink()
    jobs = planned_jobs(clone)
    assert jobs.get("figures") == 1 and not RETRAIN & set(jobs), jobs
    (clone / "results/paper/data/provenance.json").unlink()
    jobs = planned_jobs(clone)
    assert jobs.get("prepare") == 1 and jobs.get("train") == PAPER_RUNS, jobs


def test_a_plot_code_change_plans_only_figures_and_site(clone):
    figures = clone / "src" / "se_attention" / "fonts.py"
    figures.write_text(figures.read_text() + "\nEDITED = True\n")
    # The zoo step draws with the same fonts: it redraws too; nothing trains.
    assert planned_jobs(clone) == {"code_stamp": 3, "figures": 2, "zoo": 1, "site": 1, "all": 1}


def test_a_page_edit_plans_only_the_site(clone, tmp_path):
    snakemake(clone, "site")  # a built site, then one edited page
    page = clone / "docs" / "index.en.md"
    page.write_text(page.read_text() + "\nOne more sentence.\n")
    assert planned_jobs(clone) == {"code_stamp": 1, "site": 1, "all": 1}


def test_plain_mkdocs_builds_the_site_in_a_fresh_clone(clone, tmp_path):
    """No staging step first: the MkDocs hook reads results/paper/ (SE_RUN) and node_modules/."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env.pop("SE_RUN", None)
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=clone, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    for lang in ("", "en/"):
        page = (tmp_path / "site" / lang / "results" / "index.html").read_text()
        assert "generated/figures/" in page and "<table>" in page  # figures and generated tables are in
        assert (tmp_path / "site" / lang / "explore" / "index.html").exists()
    assert (tmp_path / "site" / "assets" / "katex" / "katex-swap.min.css").exists()
    concepts = (tmp_path / "site" / "concepts" / "index.html").read_text()
    # Equations typeset at build time (hooks/maths.py): none left as TeX for the browser.
    assert 'class="katex-display"' in concepts and 'class="arithmatex">\\(' not in concepts
    assert 'class="arithmatex">\\[' not in concepts
    assert git_status(clone) == ""  # nothing staged into docs/ or anywhere else
