"""The fleet (every pending run of a configuration at once, for a GPU) tested on the CPU: a tiny
configuration of two models, trained side by side, each run exported as one archive, images/s
printed; the archives imported into another checkout, which then has nothing to train. And what
an import refuses: anything but one run's files."""

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
from conftest import copy_worktree, require_shared_archive

from se_attention import fleet as fleet_module
from se_attention.fleet import PendingRun, RunArchiveError, import_runs

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


@pytest.mark.slow
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
    # One archive per run, side by side (a lent machine gives back a few flat files).
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fleet-cnn-seed0.tar.gz", "fleet-eca-seed0.tar.gz"]
    assert "all runs together:" in done.stdout
    # Nothing pending now: a second fleet trains nothing.
    again = fleet(repo, *sm)
    assert again.returncode == 0 and "nothing to train" in again.stdout, again.stdout + again.stderr
    # Another checkout takes the archives and has nothing left to train either: the runs and their stamps came.
    other = copy_worktree(tmp_path / "other")
    (other / "config" / "tiny.yaml").write_text(TINY)
    # The other checkout has what a clone of the repository would: the data's provenance and its stamp,
    # but neither the runs nor their training stamps and logs.
    for path in (repo / "results" / "fleet").rglob("*"):
        name = path.relative_to(repo).as_posix()
        if path.is_file() and "/runs/" not in name and "/train_" not in name:
            (other / name).parent.mkdir(parents=True, exist_ok=True)
            (other / name).write_bytes(path.read_bytes())
    imported = fleet(other, "--import", str(tmp_path / "out"))
    assert imported.returncode == 0 and "imported results/fleet/runs/eca/seed0" in imported.stdout, imported.stderr
    after = fleet(other, *sm)
    assert after.returncode == 0 and "nothing to train" in after.stdout, after.stdout + after.stderr


def test_fleet_refuses_to_resume_a_run_on_a_gpu_and_names_its_resume_file(tmp_path, monkeypatch, capsys):
    # train.py cannot resume on a GPU yet (the saved random-number state is loaded onto it; seen on
    # an H200): the fleet says so before training, naming the file, rather than let each job fail.
    stopped, fresh = tmp_path / "runs" / "spatial" / "seed0", tmp_path / "runs" / "spatial" / "seed1"
    stopped.mkdir(parents=True)
    (stopped / "resume.pt").write_bytes(b"state after epoch 45")
    runs = [PendingRun(folder=f, stamp=tmp_path / "stamp.txt", log=tmp_path / "log") for f in (stopped, fresh)]
    monkeypatch.setattr(fleet_module, "pending_runs", lambda extra: runs)
    monkeypatch.setattr(fleet_module, "snakemake", lambda *a, **k: pytest.fail("the fleet trained anyway"))
    monkeypatch.setattr(fleet_module, "cuda_available", lambda: True)
    assert fleet_module.main([]) == 2
    err = capsys.readouterr().err
    assert str(stopped / "resume.pt") in err and "seed1" not in err and "Delete these files" in err
    # On a CPU the same run resumes as always: the guard lets it through.
    monkeypatch.setattr(fleet_module, "cuda_available", lambda: False)
    assert fleet_module.unresumable(runs) == []


def test_fleet_asks_for_each_runs_stamp_so_a_run_of_old_code_trains_again(tmp_path, monkeypatch):
    # A run whose files exist but whose training code changed is pending; asked for its metrics alone,
    # Snakemake finds them there and trains nothing.
    runs = [PendingRun(folder=tmp_path / "runs" / "se" / f"seed{k}", stamp=tmp_path / "train_se-0123456789abcdef.txt",
                       log=tmp_path / f"log{k}") for k in (0, 1)]
    asked = []
    monkeypatch.setattr(fleet_module, "pending_runs", lambda extra: runs)
    monkeypatch.setattr(fleet_module, "snakemake", lambda args, **k: asked.append(args) or subprocess.CompletedProcess(args, 0))
    assert fleet_module.main(["--", "--configfile", "config/zoo.yaml"]) == 0
    assert asked == [["--cores", "2", "--keep-going", str(runs[0].stamp), str(runs[0].folder / "metrics.json"),
                      str(runs[1].folder / "metrics.json"), "--configfile", "config/zoo.yaml"]]


# ------------------------------------------------------------------------------------- import refuses

RUN = "results/x/runs/cnn/seed0"
STAMP = "results/x/code-hashes/train_cnn-0123456789abcdef.txt"
LOG = "results/x/logs/train_cnn_seed0.log"


def run_files(**changes) -> dict[str, bytes]:
    files = {f"{RUN}/model.pt": b"weights", f"{RUN}/history.json": b"{}", f"{RUN}/benchmark.tsv": b"s\n1\n",
             f"{RUN}/metrics.json": json.dumps({"model": "cnn", "seed": 0}).encode(), STAMP: b"code", LOG: b"log"}
    files.update(changes)
    return {k: v for k, v in files.items() if v is not None}


def write_archive(path, files: dict[str, bytes], links=()) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)


def test_import_puts_a_run_in_place_and_supersedes_a_partial_one(tmp_path):
    write_archive(tmp_path / "x-cnn-seed0.tar.gz", run_files())
    root = tmp_path / "repo"
    (root / RUN).mkdir(parents=True)
    (root / RUN / "resume.pt").write_bytes(b"half a run")
    assert import_runs(tmp_path, root) == [RUN]
    assert (root / RUN / "model.pt").read_bytes() == b"weights" and (root / STAMP).read_bytes() == b"code"
    assert not (root / RUN / "resume.pt").exists()
    assert import_runs(tmp_path, root) == [RUN]  # the same run again: nothing differs, nothing refused


@pytest.mark.parametrize("files, links, says", [
    (run_files(**{"results/x/runs/cnn/seed0/../../../../../evil.py": b"x"}), (), "refusing member"),
    (run_files(**{"results/x/runs/cnn/seed0/notes.txt": b"x"}), (), "refusing member"),
    (run_files(**{"/etc/cron.d/x": b"x"}), (), "refusing member"),
    (run_files(**{f"{RUN}/model.pt": None}), [(f"{RUN}/model.pt", "/etc/passwd")], "refusing member"),
    (run_files(**{f"{RUN}/history.json": None}), (), "expected model.pt, history.json"),
    (run_files(**{"results/x/runs/se/seed0/metrics.json": b"{}"}), (), "exactly one run"),
    (run_files(**{f"{RUN}/metrics.json": json.dumps({"model": "se", "seed": 0}).encode()}), (), "names model 'se'"),
    (run_files(**{f"{RUN}/metrics.json": b"not json"}), (), "is not a run's metrics"),
    (run_files(**{f"{RUN}/benchmark.tsv": bytes(17 << 20)}), (), "expected at most"),
])
def test_import_refuses_anything_but_one_runs_files_and_writes_nothing(tmp_path, files, links, says):
    write_archive(tmp_path / "bad.tar.gz", files, links)
    root = tmp_path / "repo"
    with pytest.raises(RunArchiveError, match=says):
        import_runs(tmp_path, root)
    assert not root.exists()


def test_import_refuses_a_run_that_differs_from_the_one_here(tmp_path):
    write_archive(tmp_path / "x-cnn-seed0.tar.gz", run_files())
    root = tmp_path / "repo"
    (root / RUN).mkdir(parents=True)
    (root / RUN / "model.pt").write_bytes(b"other weights")
    with pytest.raises(RunArchiveError, match=f"{RUN}/model.pt is already here with other contents"):
        import_runs(tmp_path, root)
    assert (root / RUN / "model.pt").read_bytes() == b"other weights" and not (root / STAMP).exists()


def test_import_of_a_folder_without_archives_says_so(tmp_path):
    with pytest.raises(RunArchiveError, match="no run archives"):
        import_runs(tmp_path, tmp_path)
