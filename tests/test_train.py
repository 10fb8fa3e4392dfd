import copy
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from se_attention.provenance import VERSIONED

from conftest import ROOT
from se_attention.train import TrainingError, train

CPU = torch.device("cpu")


def short(recipe, epochs=2, **train_overrides):
    r = copy.deepcopy(recipe)
    r["train"].update(epochs=epochs, **train_overrides)
    return r


def test_same_seed_same_metrics(tmp_path, prepared, smoke_recipe):
    torch.set_num_threads(1)
    a = train(short(smoke_recipe), "se", 7, prepared, tmp_path / "a", CPU, progress=False)
    b = train(short(smoke_recipe), "se", 7, prepared, tmp_path / "b", CPU, progress=False)
    ha, hb = (json.loads((tmp_path / d / "history.json").read_text()) for d in "ab")
    assert ha["iter_loss"] == hb["iter_loss"]
    assert a["final_test_acc"] == b["final_test_acc"] and a["final_test_loss"] == b["final_test_loss"]
    train(short(smoke_recipe), "se", 8, prepared, tmp_path / "c", CPU, progress=False)
    assert json.loads((tmp_path / "c" / "history.json").read_text())["iter_loss"] != ha["iter_loss"]


def test_outputs_and_provenance(tmp_path, prepared, smoke_recipe):
    out = tmp_path / "run"
    metrics = train(short(smoke_recipe, epochs=1), "cnn", 0, prepared, out, CPU, {"arrays_sha256": "abc"},
                    progress=False)
    assert {p.name for p in out.iterdir()} == {"model.pt", "history.json", "metrics.json"}
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    prov = saved["provenance"]
    assert prov["data"] == {"arrays_sha256": "abc"} and prov["recipe"]["train"]["epochs"] == 1
    assert set(prov["versions"]) == {"python", *VERSIONED}  # every package that decides a number
    assert all(isinstance(v, str) and v[0].isdigit() for v in prov["versions"].values()), prov["versions"]
    assert len(prov["code_digest"]) == 16  # the training code that made it (se_attention.stamps)
    assert prov["engine"] == "fused CPU kernels"  # what trained it
    assert set(prov["git"]) == {"commit", "dirty"}
    history = json.loads((out / "history.json").read_text())
    assert len(history["iter_loss"]) == 200 // 64 + 1  # the last partial batch is a step too
    assert set(history["epochs"][0]) >= {"train_loss", "train_acc", "test_loss", "test_acc", "lr"}
    state = torch.load(out / "model.pt", weights_only=True)
    assert "fc2.weight" in state


def test_without_the_kernels_a_run_trains_module_by_module_and_says_so(tmp_path, prepared, smoke_recipe,
                                                                        monkeypatch, capsys):
    from se_attention import fused

    def cannot_build(model):
        raise fused.KernelUnavailable("cannot build bn_relu_pool.cpp: ...Ninja is required")

    monkeypatch.setattr(fused, "accelerate", cannot_build)
    monkeypatch.setattr(fused, "augmented_batch", lambda *a, **k: pytest.fail("the batch kernel was called"))
    torch.set_num_threads(1)
    recipe = short(smoke_recipe, epochs=1)
    modules = train(recipe, "se", 3, prepared, tmp_path / "modules", CPU, progress=False)
    assert modules["provenance"]["engine"] == "PyTorch modules (the fused kernels could not be built)"
    assert "the fused kernels cannot be built here" in capsys.readouterr().err
    monkeypatch.undo()
    kernels = train(recipe, "se", 3, prepared, tmp_path / "kernels", CPU, progress=False)
    # The same draws (batches, dropout masks): the two engines' losses differ by float rounding, grown
    # over an epoch's steps, not by another course.
    a, b = (json.loads((tmp_path / d / "history.json").read_text())["iter_loss"] for d in ("modules", "kernels"))
    assert a != b and max(abs(x - y) for x, y in zip(a, b)) < 1e-3


def test_validation_split_drives_the_scheduler(tmp_path, prepared, smoke_recipe):
    metrics = train(short(smoke_recipe, epochs=1, monitor="val", val_per_class=3), "cnn", 0, prepared, tmp_path,
                    CPU, progress=False)
    assert metrics["train_images"] == 200 - 30
    assert "val_loss" in json.loads((tmp_path / "history.json").read_text())["epochs"][0]


def test_non_finite_loss_stops_with_epoch_and_step(tmp_path, prepared, smoke_recipe):
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) at epoch \d+, step \d+"):
        train(short(smoke_recipe, epochs=3, lr=1e30), "cnn", 0, prepared, tmp_path, CPU, progress=False)
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.slow
def test_killed_run_resumes_to_identical_metrics(tmp_path, prepared, smoke_recipe):
    recipe = short(smoke_recipe, epochs=3)
    cmd = [sys.executable, "-m", "se_attention.train", "--recipe", json.dumps(recipe), "--model", "se", "--seed", "1",
           "--data", str(prepared), "--threads", "1", "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    subprocess.run(cmd + ["--out", str(tmp_path / "whole")], check=True, env=env, capture_output=True)

    out = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["--out", str(out)], env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "resume.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists(), "the run finished before it could be killed"
    done = subprocess.run(cmd + ["--out", str(out)], check=True, env=env, capture_output=True, text=True)
    assert "resuming from" in done.stderr
    whole, resumed = (json.loads((d / "history.json").read_text()) for d in (tmp_path / "whole", out))
    assert resumed["iter_loss"] == whole["iter_loss"]
    assert [e["test_acc"] for e in resumed["epochs"]] == [e["test_acc"] for e in whole["epochs"]]
    assert not (out / "resume.pt").exists()


FAULTS_PER_STEP = """
import resource, sys, torch, torch.nn.functional as F
from se_attention.cnn import build_model
from se_attention.train import keep_freed_memory, make_optimizer
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.set_num_threads(1)
model = build_model("se").to(memory_format=torch.channels_last)
opt = make_optimizer(model, 1e-3)
x, y = torch.randn(64, 3, 32, 32).contiguous(memory_format=torch.channels_last), torch.randint(0, 10, (64,))
def step():
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()
for _ in range(8):  # the heap grows over the first few steps (Adam's state, fragmentation)
    step()
faults = []
for _ in range(9):  # the median step: a rare step in which the heap grows once more does not count
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sorted(faults)[4])
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    faults = {mode: float(subprocess.run([sys.executable, "-c", FAULTS_PER_STEP, mode], env=env, check=True,
                                         capture_output=True, text=True).stdout)
              for mode in ("default", "keep")}
    # Each step frees and re-allocates ~16 MB, about 4,000 pages: faulting them in fresh is the cost removed.
    # By default glibc may or may not have raised its mmap threshold by the steps measured (it does so as
    # big blocks are freed), so the default faults thousands of pages a step or, some runs, none: the
    # claim is about the kept heap, which reuses its pages from the first steps on.
    assert faults["keep"] < 400, faults


def test_a_checkpoint_of_other_training_code_is_not_continued(tmp_path, prepared, smoke_recipe, capsys):
    """Epochs trained by other code must not be mixed with this code's: the resume key holds its digest."""
    recipe = short(smoke_recipe, epochs=2)
    fresh = train(recipe, "cnn", 0, prepared, tmp_path / "fresh", CPU, progress=False)
    out = tmp_path / "resumed"
    out.mkdir()
    # What a run killed after epoch 1 under other code leaves: everything matches but the code digest.
    torch.save({"recipe": recipe, "model_name": "cnn", "seed": 0, "code_digest": "0" * 16, "epoch": 1},
               out / "resume.pt")
    again = train(recipe, "cnn", 0, prepared, out, CPU, progress=False)
    assert "it was written for another recipe, model, seed or training code; starting from epoch 1" in \
        capsys.readouterr().err
    assert again["final_test_acc"] == fresh["final_test_acc"] and again["epochs"] == 2
