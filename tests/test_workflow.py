"""The workflow end to end (smoke config on the shared CIFAR-10 copy) and its rebuild rules.

These run Snakemake in a copy of the repository, so the checkout under test is never touched.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, config_models, models_using, snakemake

EXPENSIVE = {"download", "prepare", "train", "probe"}


def planned_jobs(repo: Path, *args: str) -> dict[str, int]:
    """The job counts of a dry run (the 'Job stats' table); empty when nothing would run."""
    out = snakemake(repo, "-n", *args).stdout
    table = re.search(r"job\s+count\n-+\s+-+\n(.*?)\ntotal", out, re.S)
    if not table:
        assert "Nothing to be done" in out or "nothing to be done" in out.lower(), out
        return {}
    return {name: int(n) for name, n in (line.split() for line in table.group(1).strip().splitlines())}


@pytest.mark.slow
def test_smoke_run_writes_results_figures_and_a_bilingual_site(smoke_repo):
    repo, _ = smoke_repo
    res = repo / "results" / "smoke"
    for lang in ("zh", "en"):
        for name in ("iteration_loss", "epoch_curves", "feature_maps", "channel_attention"):
            assert (res / "views" / "figures" / lang / f"{name}.png").stat().st_size > 10_000
        assert "CNN + SE" in (res / "tables" / lang / "metrics.md").read_text()
    for model in ("cnn", "se"):
        assert (res / "runs" / model / "seed0" / "metrics.json").exists()
        assert (res / "runs" / model / "seed0" / "benchmark.tsv").exists()
    zh = (repo / "site" / "smoke" / "index.html").read_text()
    en = (repo / "site" / "smoke" / "en" / "index.html").read_text()
    assert "实验给出的答案" in zh and "The answer, from the runs" in en  # the home page opens with the idea
    assert zh.index("generated/figures/zh/se_block.svg") < zh.index('id="headline"')
    assert 'hreflang="en"' in zh and 'hreflang="zh"' in en  # the language switcher
    assert "generated/figures/zh/epoch_curves.png" in zh
    assert (repo / "site" / "smoke" / "en" / "results" / "index.html").exists()


@pytest.mark.slow
def test_every_pages_alternate_links_name_the_same_page_in_each_language(smoke_repo):
    """The head's <link rel="alternate" hreflang> of a page (search engines, the theme's switcher) and the
    switcher's own links go to this page in each language, the notebook page included."""
    import posixpath
    import re

    site = smoke_repo[0] / "site" / "smoke"
    pages = [p.parent.relative_to(site).as_posix() for p in site.rglob("index.html")]
    pages = [p for p in pages if not p.startswith(("en", "generated", "assets")) and "explorer/" not in p]
    assert "explore" in pages and "concepts" in pages, pages
    for lang_dir, page in ((d, p) for d in ("", "en/") for p in pages):
        url = f"{lang_dir}{page}/".replace("./", "") if page != "." else lang_dir
        html = (site / url / "index.html").read_text()
        for tag in ("link", "a"):
            found = dict((lang, href) for href, lang in re.findall(
                rf'<{tag} (?:rel="alternate" )?href="([^"]*)"\s+hreflang="([\w-]+)"', html))
            assert set(found) == {"zh", "en"}, (url, tag, found)
            for lang, href in found.items():
                # The home pages' links are absolute (the site's root path: "/" in a local build).
                target = posixpath.normpath((href.lstrip("/") or ".") if href.startswith("/")
                                            else posixpath.join(url or ".", href))
                expected = posixpath.normpath(("en/" if lang == "en" else "") + (page if page != "." else "."))
                assert target == expected, (url, tag, lang, href)


@pytest.mark.slow
def test_nothing_to_do_after_a_complete_run(smoke_repo):
    repo, args = smoke_repo
    assert planned_jobs(repo, *args) == {}


def copy_repo(repo: Path, tmp_path: Path) -> Path:
    """A copy of a finished repository (with its .snakemake metadata) that a test may change."""
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, symlinks=True)
    return copy


def planned_after_edit(smoke_repo, tmp_path, module: str) -> dict[str, int]:
    """Change the code of a package module in a copy of the finished smoke repository; dry-run it.

    A code change, not a comment: comments and docstrings are not a change (se_attention.stamps).
    """
    repo, args = smoke_repo
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, symlinks=True)
    code = copy / "src" / "se_attention" / module
    code.write_text(code.read_text() + "\nEDITED = True\n")
    return planned_jobs(copy, *args)


@pytest.mark.slow
def test_plot_code_change_reruns_only_figures_and_site(smoke_repo, tmp_path):
    jobs = planned_after_edit(smoke_repo, tmp_path, "figures.py")
    # The zoo step draws with the figures module's helpers, so it redraws too; nothing trains.
    assert set(jobs) == {"code_stamp", "figures", "zoo", "site", "all"}, jobs
    assert jobs["figures"] == 2  # one per language


@pytest.mark.slow
def test_model_code_change_retrains(smoke_repo, tmp_path):
    jobs = planned_after_edit(smoke_repo, tmp_path, "eca.py")
    # Only ECA's training uses eca.py: its run retrains and is probed again, the others stay.
    assert models_using("eca", "smoke.yaml") == ["eca"]
    assert jobs.get("train") == 1 and jobs.get("probe") == 1 and "prepare" not in jobs, jobs


@pytest.mark.slow
def test_engine_code_change_retrains_every_model(smoke_repo, tmp_path):
    # se.py is SE's module and also the engine's: fused.py imports it to run SE blocks through its
    # kernel, so every model's training imports se.py and an edit of it retrains them all. Stamps
    # follow imports and cannot tell that the CNN never takes that path; retraining is the safe side.
    models = config_models("smoke.yaml")
    assert models_using("se", "smoke.yaml") == models
    jobs = planned_after_edit(smoke_repo, tmp_path, "se.py")
    assert jobs.get("train") == len(models) and jobs.get("probe") == len(models) and "prepare" not in jobs, jobs


@pytest.mark.slow
def test_a_fresh_copy_of_the_archive_retrains_nothing(smoke_repo, tmp_path):
    """CI and each new machine copy CIFAR-10 afresh: the archive is newer than every result, same bytes."""
    repo, args = smoke_repo
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, symlinks=True)
    decade = 10 * 365 * 24 * 3600
    for path in copy.rglob("*"):  # age every result, keeping their order; the archive stays as it is
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            os.utime(path, (stat.st_atime - decade, stat.st_mtime - decade))
    assert planned_jobs(copy, *args) == {}


@pytest.mark.slow
def test_a_new_seed_in_a_clone_trains_only_that_seed(smoke_repo, tmp_path):
    """A clone has results but no data/ or .snakemake: one more seed must not retrain the others."""
    repo, args = smoke_repo
    clone = tmp_path / "repo"
    top_level = {"data", ".snakemake"}  # results/smoke/data/provenance.json is committed: keep it
    shutil.copytree(repo, clone, symlinks=True,
                    ignore=lambda folder, names: top_level & set(names) if Path(folder) == repo else set())
    smoke = clone / "config" / "smoke.yaml"
    smoke.write_text(re.sub(r"^seeds: \[0\]", "seeds: [0, 1]", smoke.read_text(), flags=re.M))
    finished = (clone / "results/smoke/runs/se/seed0/model.pt").read_bytes()
    jobs = planned_jobs(clone, *args)
    new_runs = len(config_models("smoke.yaml"))  # the new seed of every model
    assert jobs.get("train") == new_runs and not {"download", "prepare", "probe"} & set(jobs), jobs
    # The new runs and the table that counts them; the site build is not what this tests.
    snakemake(clone, *args, "--", *(f"results/smoke/runs/{m}/seed1/metrics.json" for m in ("cnn", "se")),
              "results/smoke/tables/en/seeds.md")
    assert (clone / "results/smoke/runs/se/seed1/metrics.json").exists()
    assert (clone / "results/smoke/runs/se/seed0/model.pt").read_bytes() == finished
    # The data cache was rebuilt from the configured source and checked against the provenance.
    assert (clone / "data/smoke/cifar10.npz").exists()
    logs = [(clone / f"results/smoke/logs/train_{m}_seed1.log").read_text() for m in ("cnn", "se")]
    assert sum("rebuilt from" in log for log in logs) == 1, logs  # one job built it; the other found it
    assert "| CNN + SE | 1 |" in (clone / "results/smoke/tables/en/seeds.md").read_text()


@pytest.mark.slow
def test_the_whole_zoo_trains_only_its_modules_and_joins_the_zoo_page(smoke_repo, tmp_path):
    """config/zoo.yaml puts every module of the registry in `models`: only their runs train, the
    Results page's figures, tables and Explorer stay the lesson's pair, and the Zoo page lists them all."""
    repo, args = smoke_repo
    clone = tmp_path / "repo"
    shutil.copytree(repo, clone, symlinks=True)
    zoo_args = ("--configfile", "config/zoo.yaml", *args[1:])  # smoke.yaml after zoo.yaml
    jobs = planned_jobs(clone, *zoo_args)
    assert set(jobs) == {"code_stamp", "train", "probe", "zoo", "site", "all"}, jobs
    new_models = set(config_models("zoo.yaml")) - set(config_models())
    assert new_models and jobs["train"] == jobs["probe"] == len(new_models), jobs  # smoke: one seed
    figures = clone / "results/smoke/views/figures/en/feature_maps.png"
    drawn = figures.read_bytes()
    snakemake(clone, *zoo_args)
    assert figures.read_bytes() == drawn
    table = (clone / "results/smoke/tables/en/zoo.md").read_text()
    assert all(f"| {name} |" in table for name in ("CNN", "SE", "SE after the pool", "ECA", "CBAM")), table
    assert sorted(p.name for p in (clone / "results/smoke/views/explorer").glob("*.onnx")) == ["cnn.onnx", "se.onnx"]
    assert "CBAM" in (clone / "site/smoke/en/zoo/index.html").read_text()


@pytest.mark.slow
def test_fresh_clone_builds_the_site_without_data_or_training(tmp_path):
    """A clone has committed results/paper, no dataset and no .snakemake metadata."""
    committed = subprocess.run(["git", "ls-files", "results/paper"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "metrics.json" in committed, "results/paper must be committed for the site to build from a clone"
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    jobs = planned_jobs(clone)
    assert not EXPENSIVE & set(jobs), jobs
    assert "site" in jobs


@pytest.mark.slow
def test_slurm_profile_plans_the_workflow(smoke_repo):
    """The cluster profile parses and plans (a dry run submits nothing)."""
    repo, args = smoke_repo
    out = subprocess.run(["snakemake", "--profile", "profiles/slurm", "-n", "--forcerun", "train", *args], cwd=repo,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert re.search(rf"^train\s+{len(config_models('smoke.yaml'))}$", out.stdout, re.M), out.stdout[-2000:]
