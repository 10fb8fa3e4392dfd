"""The fleet (every pending run of a configuration at once, for a GPU) tested on the CPU: a tiny
configuration of two models, trained side by side, folders exported, images/s printed."""

import json
import os
import subprocess
import sys

import pytest
from conftest import copy_worktree, require_shared_archive

pytestmark = pytest.mark.slow

TINY = """run: fleet
models: [cnn, eca]
seeds: [0]
subset: {train_per_class: 10, test_per_class: 5}
train: {epochs: 1}
"""


def fleet(repo, *args):
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    return subprocess.run([sys.executable, "-m", "se_attention.fleet", *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)


def test_fleet_trains_every_pending_run_at_once_and_exports_them(tmp_path):
    archive = require_shared_archive()
    repo = copy_worktree(tmp_path / "repo")
    (repo / "config" / "tiny.yaml").write_text(TINY)
    sm = ["--", "--configfile", "config/tiny.yaml", "--config", f"data_source={archive}"]
    done = fleet(repo, "--export", str(tmp_path / "out"), *sm)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    planned = done.stdout.split("training 2 runs at once: ", 1)[1].splitlines()[0].split(", ")
    assert sorted(planned) == ["results/fleet/runs/cnn/seed0", "results/fleet/runs/eca/seed0"], done.stdout
    for model in ("cnn", "eca"):
        run = repo / "results" / "fleet" / "runs" / model / "seed0"
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["model"] == model and metrics["epochs"] == 1
        assert f"{run.relative_to(repo)}: {metrics['images_per_second']:.0f} images/s" in done.stdout
        assert (tmp_path / "out" / run.relative_to(repo) / "model.pt").exists()
    assert "all runs together:" in done.stdout
    # Nothing pending now: a second fleet trains nothing.
    again = fleet(repo, *sm)
    assert again.returncode == 0 and "nothing to train" in again.stdout, again.stdout + again.stderr
