"""The benchmark runs end to end on random images (a few steps: this checks the plumbing, not speed),
and the opt-in bf16 study compares our engine with itself under bf16 autocast."""

import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT


@pytest.mark.slow
def test_bench_runs_both_pipelines_in_turns_and_ends_with_the_speedup(tmp_path):
    out = tmp_path / "speed.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, "-m", "se_attention.bench", "--steps", "4", "--round", "2", "--warmup", "1",
                           "--threads", "1", "--processes", "2", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
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
    # Two rounds shared between two generations of processes: one round each, steps counted once.
    assert record["processes"] == 2 and "in 2 processes each" in done.stdout
    # Ours is train.py's engine, and the record says whether the fused kernels ran it.
    from se_attention import fused

    expected = "fused CPU kernels" if fused.available() else "PyTorch modules (the fused kernels could not be built)"
    assert record["engine"] == expected and f"our engine: {expected}" in done.stdout


def test_median_spread_of_rounds():
    from se_attention.bench import median_spread

    s = median_spread([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median"] == 3.0 and s["q1"] == 2.0 and s["q3"] == 4.0 and s["relative_spread"] == 2 / 3
    assert median_spread([2.5])["relative_spread"] == 0.0


def test_faithfulness_can_take_the_lessons_runs_from_another_record_and_train_only_ours(tmp_path):
    from argparse import Namespace

    from se_attention.bench import faithfulness_jobs, lesson_runs

    record = tmp_path / "faithfulness.json"
    runs = [{"pipeline": p, "model": m, "seed": s, "test_acc": [50.0] * 5, "code_digest": "old"}
            for p in ("lesson", "ours") for m in ("cnn", "se") for s in (0, 1, 2)]
    record.write_text(json.dumps({"epochs": 5, "runs": runs}))
    args = Namespace(reuse=False, out=tmp_path / "new.json", faithfulness=5, seeds=[0, 1, 2], bf16=False,
                     lesson_runs=record)
    jobs, kept = faithfulness_jobs(args, "new")
    assert {p for p, _, _ in jobs} == {"ours"} and len(jobs) == 6
    assert kept == runs[:6]  # the lesson's, as recorded (their own digest)
    with pytest.raises(ValueError, match=r"faithfulness.json: expected runs of 3 epochs, found 5"):
        lesson_runs(record, 3, [0, 1, 2])
    record.write_text(json.dumps({"epochs": 5, "runs": runs[1:]}))
    with pytest.raises(ValueError, match=r"expected the lesson's runs of every model and seed, missing cnn seed 0"):
        lesson_runs(record, 5, [0, 1, 2])


@pytest.mark.parametrize("args, words", [
    (["--lesson-runs", "x.json"], "--lesson-runs goes with --faithfulness"),
    (["--device", "cuda", "--bf16"], "no --bf16"),
    (["--processes", "0"], "--processes: expected at least 1, found 0"),
    (["--device", "cuda", "--faithfulness", "5"], "no --faithfulness"),
])
def test_bench_refuses_options_it_would_ignore(args, words, capsys):
    from se_attention import bench

    with pytest.raises(SystemExit) as exit:
        bench.main(args)
    assert exit.value.code == 2 and words in capsys.readouterr().err


def test_faithfulness_plans_every_run_and_with_reuse_keeps_only_runs_of_the_same_code(tmp_path):
    from argparse import Namespace

    from se_attention.bench import faithfulness_jobs

    out = tmp_path / "faithfulness.json"
    args = Namespace(reuse=False, out=out, faithfulness=5, seeds=[0, 1, 2], bf16=False)
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


def test_bf16_study_compares_our_engine_in_both_precisions_and_pairs_them_by_seed(tmp_path):
    from argparse import Namespace

    from se_attention.bench import faithfulness_jobs

    args = Namespace(reuse=False, out=tmp_path / "bf16.json", faithfulness=5, seeds=[0, 1, 2], bf16=True)
    jobs, _ = faithfulness_jobs(args, "abc")
    assert sorted({p for p, _, _ in jobs}) == ["ours", "ours-bf16"] and len(jobs) == 12
    assert faithfulness_jobs(Namespace(**{**vars(args), "bf16": False}), "abc")[0][0][0] == "lesson"


def test_bf16_pipeline_starts_where_fp32_starts_and_runs_convolutions_in_bf16():
    import torch

    from se_attention.bench import setup

    x = np.random.default_rng(0).integers(0, 256, (128, 32, 32, 3), dtype=np.uint8)
    y = np.arange(128) % 10
    fp32, _, fp32_batches = setup("ours", "se", x, y, seed=3)
    bf16, optimizer, bf16_batches = setup("ours-bf16", "se", x, y, seed=3)
    # Same seed, same start: the same weights under the same names, and the same augmented batch.
    assert all(torch.equal(a, b) for a, b in zip(fp32.state_dict().values(), bf16.state_dict().values()))
    assert list(fp32.state_dict()) == list(bf16.state_dict())
    (xa, ya), (xb, yb) = next(fp32_batches), next(bf16_batches)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    seen = []
    bf16.blocks[0].conv.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    logits = bf16(xb)
    assert seen == [torch.bfloat16] and logits.dtype == torch.float32  # bf16 inside, fp32 for the loss
    torch.nn.functional.cross_entropy(logits, yb).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in bf16.parameters())
    assert not torch.allclose(fp32(xa), logits, atol=0)  # it really ran in another precision


def test_bf16_refuses_an_emulating_cpu_unless_told(monkeypatch, capsys):
    from se_attention import bench

    monkeypatch.setattr(bench, "native_bf16", lambda: False)
    assert bench.main(["--bf16", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "--bf16" in err and "AMX" in err and "AVX-512 BF16" in err and "--emulated-bf16" in err


def test_bf16_accuracy_study_writes_paired_runs_and_names_the_cpu(tmp_path):
    from conftest import write_prepared

    data = write_prepared(tmp_path / "cifar10.npz", n_train=128, n_test=64)
    out = tmp_path / "bf16_accuracy.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, "-m", "se_attention.bench", "--bf16", "--emulated-bf16", "--data", str(data),
                           "--faithfulness", "1", "--seeds", "0", "--jobs", "2", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert record["pipelines"] == ["ours", "ours-bf16"] and record["native_bf16"] in (True, False)
    assert record["cpu_model"] and record["cpu_isa"] and record["epochs"] == 1
    assert sorted((r["pipeline"], r["model"]) for r in record["runs"]) == [
        ("ours", "cnn"), ("ours", "se"), ("ours-bf16", "cnn"), ("ours-bf16", "se")]
    assert all(len(r["test_acc"]) == 1 and 0 <= r["test_acc"][0] <= 100 for r in record["runs"])


def test_bench_on_a_gpu_says_when_there_is_none(monkeypatch, capsys):
    from se_attention import bench

    monkeypatch.setattr(bench.torch.cuda, "is_available", lambda: False)
    assert bench.main(["--device", "cuda"]) == 2
    assert "--device cuda: torch sees no CUDA device here" in capsys.readouterr().err


def test_bench_children_train_on_the_device_asked_for():
    from argparse import Namespace

    from se_attention import bench

    args = Namespace(threads=1, data=None, faithfulness=None, device="cuda")
    cmd = bench.child_command(args, "ours", "se", 0)
    assert cmd[cmd.index("--device") + 1] == "cuda"
    # The lesson's batches reach the training device as its loop sends them (images.to(device)).
    import torch

    x, y = next(bench.on_device(iter([(torch.zeros(2, 3), torch.ones(2))]), torch.device("cpu")))
    assert x.device.type == "cpu" and y.tolist() == [1.0, 1.0]
