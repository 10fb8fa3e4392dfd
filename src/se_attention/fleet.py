"""Train every pending run of a configuration at once, on one device, and report images/s.

    python -m se_attention.fleet --cores 16 -- --config data_source=../shared/data/cifar10-jpeg.tar.gz
    python -m se_attention.fleet --cores 16 --export /somewhere -- --configfile config/zoo.yaml

Made for a GPU (most learners who retrain have one): the lesson's CNN keeps a modern GPU nearly
idle, so one device trains many runs side by side, each in its own process (the seeds stay
independent and each run writes exactly the folder the workflow expects). Which runs are pending
is Snakemake's answer, not ours: a dry run lists the train jobs whose outputs are missing or whose
code stamp changed, and the same Snakemake then runs them all at once (`--cores` = the number of
pending runs, one thread each). The device is the training step's own choice: CUDA when present.
Runs a killed fleet left behind resume after their last finished epoch.

Prints each run's images/s and the sum over runs, and exits with Snakemake's status. Arguments
after `--` go to Snakemake unchanged (--config, --configfile).

A machine lent for a while (a cloud GPU, a cluster node) gives back files, not a checkout: with
--export DIR each finished run becomes one archive in DIR, `<run>-<model>-seed<k>.tar.gz`, holding
exactly what the workflow commits for it (the run folder, its training stamp and its log), and

    python -m se_attention.fleet --import DIR

puts them in place in this checkout, refusing anything else an archive might hold (other paths,
links, oversized or malformed files) and a run that differs from one already here.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import atomic

def snakemake(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", *args], text=True, **kwargs)


@dataclass(frozen=True)
class PendingRun:
    folder: Path  # results/<run>/runs/<model>/seed<k>
    stamp: Path   # results/<run>/code-hashes/train_<model>-<digest>.txt: the code that trains it
    log: Path     # results/<run>/logs/train_<model>_seed<k>.log


def pending_runs(extra: list[str]) -> list[PendingRun]:
    """Every train job a dry run plans, in Snakemake's order."""
    done = snakemake(["-n", "--until", "train", "--cores", "1", *extra], capture_output=True)
    if done.returncode:
        raise RuntimeError(f"snakemake -n failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    runs = []
    for block in re.split(r"\n\s*\n", done.stdout):
        if re.search(r"^(local)?rule train:", block, re.M):
            field = {name: re.search(rf"^\s*{name}: (.*)$", block, re.M).group(1).split(", ")
                     for name in ("input", "output", "log")}
            runs.append(PendingRun(folder=Path(next(o for o in field["output"] if o.endswith("metrics.json"))).parent,
                                   stamp=Path(next(i for i in field["input"] if "/code-hashes/train_" in i)),
                                   log=Path(field["log"][0])))
    return runs


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def unresumable(runs: list[PendingRun]) -> list[Path]:
    """The resume.pt of pending runs that would resume on a GPU, which train.py cannot do yet.

    train.py loads resume.pt with map_location set to the device, which puts the saved random-number
    states on the GPU, and torch sets a generator only from a CPU tensor ("RNG state must be a
    torch.ByteTensor"). Fixing it changes train.py, so every committed run's code stamp: it comes
    with the next engine, whose adoption retrains every run anyway. Until then, say so before
    training rather than let every resumed job fail with torch's words.
    """
    partial = [run.folder / "resume.pt" for run in runs if (run.folder / "resume.pt").exists()]
    return partial if partial and cuda_available() else []


def targets(runs: list[PendingRun]) -> list[str]:
    """What the fleet asks Snakemake for: each run's metrics and its training stamp.

    The stamp too: a run whose files exist but whose code stamp changed (new training code) is pending,
    yet asked for its metrics alone, Snakemake finds the file there and trains nothing. Asked for the
    stamp as well, it writes the new stamp, and the run, whose input that is, trains again.
    """
    return sorted({str(r.stamp) for r in runs}) + [str(r.folder / "metrics.json") for r in runs]


# ------------------------------------------------------------------------------------ export, import

# What a run's archive may hold, and nothing else: the files the workflow commits for one run.
RUN_FILES = ("model.pt", "history.json", "benchmark.tsv", "metrics.json")  # metrics.json last: it marks a run done
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
MEMBER = re.compile(
    rf"results/(?P<run>{_NAME})/(?:"
    rf"runs/(?P<model>[a-z0-9_]+)/seed(?P<seed>[0-9]+)/(?P<file>{'|'.join(map(re.escape, RUN_FILES))})"
    rf"|code-hashes/train_(?P<stamp_model>[a-z0-9_]+)-[0-9a-f]{{16}}\.txt"
    rf"|logs/train_(?P<log_model>[a-z0-9_]+)_seed(?P<log_seed>[0-9]+)\.log)")
MAX_BYTES = {"model.pt": 256 << 20, "history.json": 64 << 20}  # the lesson's CNN: 4.6 MB and 1 MB
MAX_OTHER_BYTES = 16 << 20


class RunArchiveError(Exception):
    """An archive that is not one run's files as --export writes them; the message names it."""


def export_run(run: PendingRun, out_dir: Path) -> Path:
    """One archive of a finished run: its folder's files, its training stamp and its log."""
    parts = run.folder.parts  # results, <run>, runs, <model>, seed<k>
    target = out_dir / f"{parts[1]}-{parts[3]}-{parts[4]}.tar.gz"
    members = [run.folder / name for name in RUN_FILES] + [run.stamp, run.log]
    with atomic.atomic_path(target, suffix=".part") as tmp, tarfile.open(tmp, "w:gz") as tar:
        for path in members:
            tar.add(path, arcname=path.as_posix(), recursive=False)
    return target


def _check_member(archive: Path, member: tarfile.TarInfo) -> re.Match:
    match = MEMBER.fullmatch(member.name)
    if not member.isfile() or match is None:
        raise RunArchiveError(f"{archive}: refusing member {member.name!r}: expected only the regular files of one run "
                           "(results/<run>/runs/<model>/seed<k>/{" + ",".join(RUN_FILES) + "}, its training stamp "
                           "and its log)")
    cap = MAX_BYTES.get(match["file"] or "", MAX_OTHER_BYTES)
    if member.size > cap:
        raise RunArchiveError(f"{archive}: member {member.name!r} is {member.size:,} bytes; expected at most {cap:,}")
    return match


def read_run_archive(archive: Path) -> dict[str, bytes]:
    """The files of one run's archive by path, checked: one run, all its files, a metrics.json that names it."""
    files: dict[str, bytes] = {}
    runs = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                match = _check_member(archive, member)
                if member.name in files:
                    raise RunArchiveError(f"{archive}: member {member.name!r} appears twice")
                files[member.name] = tar.extractfile(member).read()
                if match["model"]:
                    runs.add((match["run"], match["model"], int(match["seed"])))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise RunArchiveError(f"{archive}: not a readable .tar.gz archive: {exc}") from exc
    if len(runs) != 1:
        raise RunArchiveError(f"{archive}: expected the files of exactly one run, found {len(runs)}: {sorted(runs)}")
    run, model, seed = runs.pop()
    folder = f"results/{run}/runs/{model}/seed{seed}"
    missing = [f"{folder}/{name}" for name in RUN_FILES if f"{folder}/{name}" not in files]
    stamps = [n for n in files if n.startswith(f"results/{run}/code-hashes/train_{model}-")]
    logs = [n for n in files if n == f"results/{run}/logs/train_{model}_seed{seed}.log"]
    if missing or len(stamps) != 1 or len(logs) != 1 or len(files) != len(RUN_FILES) + 2:
        raise RunArchiveError(f"{archive}: expected {', '.join(RUN_FILES)} of {folder}, the training stamp of {model} "
                           f"and its log; found {sorted(files)}")
    try:
        metrics = json.loads(files[f"{folder}/metrics.json"])
        named = (metrics["model"], metrics["seed"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RunArchiveError(f"{archive}: {folder}/metrics.json is not a run's metrics (model, seed): {exc}") from exc
    if named != (model, seed):
        raise RunArchiveError(f"{archive}: {folder}/metrics.json names model {named[0]!r} seed {named[1]!r}; "
                           f"expected {model!r} seed {seed}")
    return files


def _write_order(name: str) -> int:
    return 0 if "/code-hashes/" in name else 2 if name.endswith("/metrics.json") else 1


def import_runs(folder: Path, root: Path = Path(".")) -> list[str]:
    """Put every run archive of ``folder`` in place under ``root``; all are checked before any is written."""
    archives = sorted(folder.glob("*.tar.gz"))
    if not archives:
        raise RunArchiveError(f"{folder}: no run archives (*.tar.gz) to import")
    checked = [(archive, read_run_archive(archive)) for archive in archives]
    for archive, files in checked:
        for name, data in files.items():
            here = root / name
            if here.exists() and not name.endswith(".log") and here.read_bytes() != data:
                raise RunArchiveError(f"{archive}: {name} is already here with other contents: a run trained twice? "
                                   "Remove the run here first if the archive's is the one to keep")
    imported = []
    for _, files in checked:
        # Each file through a temporary name, in the order the workflow would have written them: the
        # stamp (an input of the run) first, so that Snakemake sees outputs newer than their inputs;
        # metrics.json, which marks a run done, last.
        for name in sorted(files, key=_write_order):
            with atomic.atomic_path(root / name) as tmp:
                tmp.write_bytes(files[name])
        run = next(n for n in files if n.endswith("/metrics.json")).rsplit("/", 1)[0]
        (root / run / "resume.pt").unlink(missing_ok=True)  # a local partial run of it is superseded
        imported.append(run)
    return imported


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.fleet", description=__doc__.split("\n")[0])
    p.add_argument("--cores", type=int, default=None,
                   help="CPU cores Snakemake may use (default: one per pending run)")
    p.add_argument("--export", type=Path, default=None,
                   help="also write each finished run as one archive here (e.g. the folder a lent GPU machine "
                        "gives back)")
    p.add_argument("--import", dest="import_dir", type=Path, default=None, metavar="DIR",
                   help="instead of training, put the run archives of DIR (written by --export) in place here")
    p.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="after --: passed to Snakemake")
    args = p.parse_args(argv)
    if args.import_dir is not None:
        try:
            for run in import_runs(args.import_dir):
                print(f"imported {run}")
        except (RunArchiveError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    extra = [a for a in args.snakemake_args if a != "--"]
    try:
        runs = pending_runs(extra)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not runs:
        print("nothing to train: every run of this configuration is current")
        return 0
    stuck = unresumable(runs)
    if stuck:
        print(f"error: {len(stuck)} pending run(s) stopped part-way and would resume on this GPU, which this "
              "engine cannot do yet (train.py puts the saved random-number state on the GPU and torch refuses it; "
              "the fix changes every run's code stamp and comes with the next engine). Delete these files to "
              "train those runs afresh: " + ", ".join(map(str, stuck)), file=sys.stderr)
        return 2
    print(f"training {len(runs)} runs at once: " + ", ".join(str(r.folder) for r in runs), flush=True)
    cores = args.cores or len(runs)
    t0 = time.perf_counter()
    done = snakemake(["--cores", str(cores), "--keep-going", *targets(runs), *extra])
    wall = time.perf_counter() - t0
    total = 0.0
    for run in runs:
        metrics = run.folder / "metrics.json"
        if not metrics.exists():
            print(f"{run.folder}: not finished (its log: {run.log})")
            continue
        m = json.loads(metrics.read_text())
        total += m["images_per_second"]
        print(f"{run.folder}: {m['images_per_second']:.0f} images/s, {m['seconds_per_epoch']:.1f} s/epoch, "
              f"final test accuracy {m['final_test_acc']:.2f}% on {m['provenance']['device']}")
        if args.export:
            print(f"  exported to {export_run(run, args.export)}")
    print(f"all runs together: {total:.0f} images/s; wall time {wall:.0f} s")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
