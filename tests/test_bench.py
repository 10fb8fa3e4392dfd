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
    # Medians over rounds, with their spread; the machine named by model and instruction set.
    for model in ("cnn", "se"):
        spread = record["models"][model]["ratio_spread"]
        assert spread["rounds"] == 2 and spread["q1"] <= spread["median"] <= spread["q3"]
        assert spread["median"] == record["models"][model]["ratio"]
    assert record["speedup"] == min(record["models"][m]["ratio"] for m in ("cnn", "se"))
    assert record["se_cnn_step_ratio"]["median"] > 0 and isinstance(record["trustworthy"], bool)
    assert record["cpu_isa"] and record["cpu_isa"] in record["device"] and record["cpu_model"] in record["device"]
    assert ("too wide to trust" in done.stdout) == (not record["trustworthy"])


def test_median_spread_of_rounds():
    from se_attention.bench import median_spread

    s = median_spread([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median"] == 3.0 and s["q1"] == 2.0 and s["q3"] == 4.0 and s["relative_spread"] == 2 / 3
    assert median_spread([2.5])["relative_spread"] == 0.0


def test_faithfulness_plans_every_run_and_with_reuse_keeps_only_runs_of_the_same_code(tmp_path):
    from argparse import Namespace

    from se_attention.bench import faithfulness_jobs

    out = tmp_path / "faithfulness.json"
    args = Namespace(reuse=False, out=out, faithfulness=5, seeds=[0, 1, 2])
    jobs, kept = faithfulness_jobs(args, "abc")
    assert len(jobs) == 12 and not kept
    assert [p for p, _, _ in jobs[:6]] == ["lesson"] * 6  # the long runs start first
    old = [{"pipeline": "lesson", "model": "cnn", "seed": 0, "test_acc": [1.0] * 5},              # no digest: trusted
           {"pipeline": "ours", "model": "cnn", "seed": 0, "test_acc": [1.0] * 5, "code_digest": "abc"},
           {"pipeline": "ours", "model": "se", "seed": 0, "test_acc": [1.0] * 5, "code_digest": "old"},
           {"pipeline": "ours", "model": "se", "seed": 7, "test_acc": [1.0] * 5, "code_digest": "abc"}]  # not asked
    out.write_text(json.dumps({"epochs": 5, "runs": old}))
    jobs, kept = faithfulness_jobs(Namespace(**{**vars(args), "reuse": True}), "abc")
    assert kept == old[:2]
    assert ("lesson", "cnn", 0) not in jobs and ("ours", "cnn", 0) not in jobs and ("ours", "se", 0) in jobs
    assert len(jobs) == 10
    out.write_text(json.dumps({"epochs": 3, "runs": old}))  # other epochs: nothing is kept
    assert faithfulness_jobs(Namespace(**{**vars(args), "reuse": True}), "abc")[1] == []
