"""The git record beside every metric: which commit, and whether its code had uncommitted edits."""

import subprocess

from se_attention.provenance import git_commit


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_dirty_means_code_edits_not_the_results_the_workflow_rewrites(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "src" / "model.py").write_text("a = 1\n")
    (tmp_path / "results" / "metrics.json").write_text("{}\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "start")
    monkeypatch.chdir(tmp_path)
    clean = git_commit()
    assert len(clean["commit"]) == 40 and clean["dirty"] is False

    (tmp_path / "results" / "metrics.json").unlink()  # what Snakemake does before a job runs
    assert git_commit()["dirty"] is False

    (tmp_path / "src" / "model.py").write_text("a = 2\n")
    assert git_commit()["dirty"] is True


def test_outside_a_checkout_there_is_no_commit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_commit() == {"commit": None, "dirty": None}
