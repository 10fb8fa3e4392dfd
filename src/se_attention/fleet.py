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
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

def snakemake(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", *args], text=True, **kwargs)


def pending_runs(extra: list[str]) -> list[Path]:
    """The run folder of every train job a dry run plans, in Snakemake's order."""
    done = snakemake(["-n", "--until", "train", "--cores", "1", *extra], capture_output=True)
    if done.returncode:
        raise RuntimeError(f"snakemake -n failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    folders = []
    for block in re.split(r"\n\s*\n", done.stdout):
        if re.search(r"^(local)?rule train:", block, re.M):
            outputs = re.search(r"^\s*output: (.*)$", block, re.M).group(1).split(", ")
            folders.append(Path(next(o for o in outputs if o.endswith("metrics.json"))).parent)
    return folders


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.fleet", description=__doc__.split("\n")[0])
    p.add_argument("--cores", type=int, default=None,
                   help="CPU cores Snakemake may use (default: one per pending run)")
    p.add_argument("--export", type=Path, default=None,
                   help="also copy each finished run folder here (e.g. $OUT on a lent GPU machine)")
    p.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="after --: passed to Snakemake")
    args = p.parse_args(argv)
    extra = [a for a in args.snakemake_args if a != "--"]
    try:
        runs = pending_runs(extra)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not runs:
        print("nothing to train: every run of this configuration is current")
        return 0
    print(f"training {len(runs)} runs at once: " + ", ".join(map(str, runs)), flush=True)
    cores = args.cores or len(runs)
    t0 = time.perf_counter()
    done = snakemake(["--cores", str(cores), "--keep-going", *(str(r / "metrics.json") for r in runs), *extra])
    wall = time.perf_counter() - t0
    total = 0.0
    for run in runs:
        metrics = run / "metrics.json"
        if not metrics.exists():
            print(f"{run}: not finished (its log is in {run.parents[2] / 'logs'})")
            continue
        m = json.loads(metrics.read_text())
        total += m["images_per_second"]
        print(f"{run}: {m['images_per_second']:.0f} images/s, {m['seconds_per_epoch']:.1f} s/epoch, "
              f"final test accuracy {m['final_test_acc']:.2f}% on {m['provenance']['device']}")
        if args.export:
            shutil.copytree(run, args.export / run, dirs_exist_ok=True)
    print(f"all runs together: {total:.0f} images/s; wall time {wall:.0f} s")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
