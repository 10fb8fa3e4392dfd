"""The benchmark runs end to end on random images (a few steps: this checks the plumbing, not speed)."""

import json
import math
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_bench_runs_both_pipelines_in_turns_and_ends_with_the_speedup(tmp_path):
    out = tmp_path / "speed.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, "-m", "se_attention.bench", "--steps", "4", "--round", "2", "--warmup", "1",
                           "--threads", "1", "--out", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"speedup \d+\.\d\d", last), last
    record = json.loads(out.read_text())
    for model in ("cnn", "se"):
        runs = record["models"][model]
        assert runs["lesson"]["steps"] == runs["ours"]["steps"] == 4
        for pipeline in ("lesson", "ours"):  # measured, not defaulted: a real rate and real phases
            assert math.isfinite(runs[pipeline]["images_per_second"]) and runs[pipeline]["images_per_second"] > 1
            assert all(ms > 0 for ms in runs[pipeline]["phases_ms"].values()), runs[pipeline]["phases_ms"]
    assert float(last.split()[1]) == round(record["speedup"], 2)  # what is printed is what is recorded
