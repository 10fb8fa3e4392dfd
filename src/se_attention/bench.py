"""Training throughput: the lesson's data pipeline against ours, same model, data and threads.

    python -m se_attention.bench --data data/paper/cifar10.npz --threads 2 --steps 480 --out results/paper/performance/speed.json
    python -m se_attention.bench --data data/paper/cifar10.npz --faithfulness 5 --seeds 0 1 2 \
        --out results/paper/performance/faithfulness.json
    python -m se_attention.bench --bf16 ... --out results/paper/performance/bf16_speed.json      # opt-in study
    python -m se_attention.bench --bf16 --faithfulness 5 ... --out results/paper/performance/bf16_accuracy.json
    python -m se_attention.bench --device cuda --threads 1 --out results/paper/performance/gpu_speed.json   # on a GPU

The lesson's pipeline is reproduced as written: PIL images in memory, torchvision transforms
(RandomCrop, flip, ColorJitter, RandomRotation, ToTensor, Normalize) in a DataLoader with batch
64 and no workers. Ours is the training engine's own code (train.py): the uint8 set in one tensor,
each batch augmented and normalised by one kernel, the conv blocks and SE gates trained through
the fused kernels of se_attention.fused (module by module where they cannot be built; the record
says which), channels_last, fused Adam, freed memory reused (keep_freed_memory).
Both train the same model for the same number of steps, each (pipeline, model) in its own process
(so peak memory is its own), the four taking turns in short rounds so that a slow spell of a
shared machine falls on all of them; the rounds are shared among a few generations of processes
(--processes), since a process keeps its own speed, fast or slow, for its whole life. Each round
gives a ratio ours/lesson per model and an SE/CNN step-time ratio; the record keeps the median over
rounds with its spread (quartiles), and says so when the spread is too wide to trust. sgemm is
measured before every round on the same threads, for the share of the compute roof (sgemm
throughput x FLOPs per training image). Prints images/s, the ratios, the roof share, peak memory,
a per-phase profile, the CPU model and the instruction set torch uses, and last `speedup <ratio>`: the smaller of the two models' median ratios.

With --bf16 the same measurements compare our engine in fp32 with our engine under CPU bf16
autocast (convolutions and linear layers in bfloat16, the rest in fp32), an opt-in study that is
never the paper's default. It is meant for CPUs that compute bf16 in hardware (AMX or AVX-512
BF16); elsewhere oneDNN emulates it and the speed says nothing about bf16, so it refuses unless
told --emulated-bf16. With --faithfulness both precisions train from the same seed (same
initial weights, batches and augmentation), so their accuracies pair by seed.

With --device cuda both pipelines train on the GPU, as a learner with one would run them: the
lesson's batches are made by PIL on the CPU and copied over, ours by the CPU kernel and sent
from pinned memory without waiting. Each phase
is timed after a synchronisation (a GPU runs asynchronously; without it a phase's time lands in
the next one that waits), and the roof is the GPU's fp32 matrix product.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .cnn import build_model, multiply_adds
from .provenance import cpu_isa, cpu_model, device_description, native_bf16
from .train import Split, epoch_batches, evaluate, keep_freed_memory, make_optimizer, prepare_engine, train_step

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
MODELS = ("cnn", "se")
BF16 = "ours-bf16"  # our engine under bf16 autocast: the opt-in --bf16 study
PIPELINES = ("lesson", "ours", BF16)


def load_images(data: Path | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    if data is None:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)
    with np.load(data) as f:
        return f["x_train"][:n], f["y_train"][:n]


def lesson_batches(x: np.ndarray, y: np.ndarray, seed: int):
    """The lesson's loader, as written: per-image PIL transforms in a DataLoader."""
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    tf = transforms.Compose([
        transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
        transforms.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1),
        transforms.RandomRotation(15), transforms.ToTensor(), transforms.Normalize(MEAN, STD)])

    class Images(Dataset):  # what torchvision's CIFAR10 does: a PIL image per item from an array
        def __len__(self):
            return len(y)

        def __getitem__(self, i):
            return tf(Image.fromarray(x[i])), int(y[i])

    torch.manual_seed(seed)
    while True:
        yield from DataLoader(Images(), batch_size=64, shuffle=True)


def on_device(batches, device: torch.device):
    """The lesson's batches copied to the training device, as its loop does (``images.to(device)``)."""
    for x, y in batches:
        yield x.to(device), y.to(device)


def our_batches(x: np.ndarray, y: np.ndarray, seed: int, kernel: bool, device=torch.device("cpu")):
    """The training engine's own batches (train.epoch_batches: made on the CPU, sent to ``device``), epoch
    after epoch."""
    from .augment import AugmentConfig

    split = Split(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(np.asarray(y, dtype=np.int64)))
    g = torch.Generator().manual_seed(seed)
    while True:
        yield from epoch_batches(split, AugmentConfig(), MEAN, STD, 64, g, device, kernel)


def run_in_bf16(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with its forward under CPU bf16 autocast, logits back in fp32 for the loss.

    Autocast runs the convolutions and linear layers in bfloat16 and keeps the rest (pooling,
    sigmoid, softmax, the weights and Adam's state) in fp32; the backward pass follows the
    forward's precision. Patched on the instance, so the weights and their names stay the model's.
    """
    forward = model.forward

    def forward_bf16(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return forward(x).float()

    model.forward = forward_bf16
    return model


def setup(pipeline: str, model_name: str, x: np.ndarray, y: np.ndarray, seed: int,
          device: torch.device = torch.device("cpu")):
    """Model, optimizer and endless batches of one pipeline, with the lesson's Adam 1e-3.

    The lesson's pipeline runs as written; ours as train.py runs it (the fused kernels where they can
    be built, channels_last weights, fused Adam, freed memory kept), in bf16 autocast for the pipeline
    ``ours-bf16`` (where the conv blocks train module by module: the kernels are fp32).
    """
    torch.manual_seed(seed)
    model = build_model(model_name).to(device)
    if pipeline in ("ours", BF16):
        keep_freed_memory()
        model = model.to(memory_format=torch.channels_last)
        kernel, _ = prepare_engine(model, device)
        optimizer = make_optimizer(model, 1e-3)
        if pipeline == BF16:
            run_in_bf16(model)
        return model, optimizer, our_batches(x, y, seed, kernel, device)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), on_device(lesson_batches(x, y, seed), device)


def measure(pipeline: str, model_name: str, data: Path | None, threads: int, device: str = "cpu") -> dict:
    """Train on command, timing each phase; runs inside a fresh process driven through stdin.

    The parent sends ``warm N`` (steps it ignores), ``run N`` (timed steps) and ``end``; the child
    answers each round with one JSON line of its images and seconds per phase. Four children
    (two pipelines x two models) take turns, so a slow spell falls on all of them alike.
    """
    torch.set_num_threads(threads)
    x, y = load_images(data, 10_000)
    dev = torch.device(device)
    model, optimizer, batches = setup(pipeline, model_name, x, y, seed=0, device=dev)
    # On a GPU a phase ends when its kernels have run, not when Python has queued them.
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    peak = peak_gpu = 0
    for line in sys.stdin:
        command, _, count = line.strip().partition(" ")
        if command == "end":
            break
        phases = dict(data=0.0, forward=0.0, backward=0.0, optimizer=0.0)
        images = 0
        for _ in range(int(count)):
            sync()
            t0 = time.perf_counter()
            xb, yb = next(batches)
            sync()
            t1 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            sync()
            t2 = time.perf_counter()
            loss.backward()
            sync()
            t3 = time.perf_counter()
            optimizer.step()
            sync()
            t4 = time.perf_counter()
            for k, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                phases[k] += dt
            images += len(yb)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if dev.type == "cuda":
            peak_gpu = torch.cuda.max_memory_allocated(dev) / 2**20
        # One line per round: what the parent needs to time this round alone.
        print(json.dumps({"command": command, "steps": int(count), "images": images, "seconds": phases,
                          "peak_rss_mb": peak, **({"peak_gpu_mb": peak_gpu} if dev.type == "cuda" else {})}),
              flush=True)
    return {"peak_rss_mb": peak}


def faithfulness(pipeline: str, model_name: str, data: Path, epochs: int, seed: int, threads: int) -> dict:
    """Train `epochs` full epochs with the lesson's recipe through one pipeline; test accuracy per epoch."""
    torch.set_num_threads(threads)
    with np.load(data) as f:
        x, y, xt, yt = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    model, optimizer, batches = setup(pipeline, model_name, x, y, seed)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", patience=3, factor=0.5)
    # Both pipelines are scored alike: train.py's evaluation of the uint8 test set (x/255, normalised).
    test = Split(torch.from_numpy(xt).permute(0, 3, 1, 2), torch.from_numpy(np.asarray(yt, dtype=np.int64)))
    steps, accs = -(-len(y) // 64), []
    for _ in range(epochs):
        model.train()
        for _ in range(steps):
            train_step(model, optimizer, *next(batches))
        test_loss, test_acc = evaluate(model, test, MEAN, STD)
        scheduler.step(test_loss)
        accs.append(test_acc)
    return {"pipeline": pipeline, "model": model_name, "seed": seed, "test_acc": accs}


def sgemm_gflops(threads: int, size: int = 1024, repeats: int = 10, device: str = "cpu") -> float:
    """fp32 matrix products per second on the training device (on a GPU: 4096 x 4096, TF32 as torch is set)."""
    torch.set_num_threads(threads)
    if device == "cuda":
        size, sync = 4096, torch.cuda.synchronize
    else:
        sync = lambda: None  # noqa: E731
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a @ b
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * size**3 * repeats / (time.perf_counter() - t0) / 1e9


def child_command(args: argparse.Namespace, pipeline: str, model: str, seed: int) -> list[str]:
    cmd = [sys.executable, "-m", "se_attention.bench", "--child", pipeline, model,
           "--threads", str(args.threads), "--seed", str(seed), "--device", args.device]
    if args.data:
        cmd += ["--data", str(args.data)]
    if args.faithfulness:
        cmd += ["--faithfulness", str(args.faithfulness)]
    return cmd


def compared(args: argparse.Namespace) -> tuple[str, str]:
    """The (baseline, candidate) pipelines: the lesson's against ours, or with --bf16 ours against ours in bf16."""
    return ("ours", BF16) if args.bf16 else ("lesson", "ours")

TOO_WIDE = 0.10  # an interquartile range over 10 % of the median: the machine was too busy to trust


def run_rounds(args: argparse.Namespace) -> tuple[dict, list[float]]:
    """Every (pipeline, model) in its own process, taking turns in rounds; sgemm before each round.

    Returns the rounds (per key: one dict per round) and the sgemm throughput of each round.
    The order of the children rotates from round to round, so none always runs first. The rounds
    are shared among ``args.processes`` generations of children, one after another: a process keeps
    its speed for its whole life (the lesson's pipeline ran at 522 to 581 images/s in four processes
    side by side, each within 2 % from round to round), so one process per pipeline would make that
    luck the record's.
    """
    keys = [(p, m) for m in MODELS for p in compared(args)]
    total = max(1, args.steps // args.round)
    generations = process_generations(args)
    rounds = {k: [] for k in keys}
    sgemm = []
    for generation in range(generations):
        with Children(args, keys) as children:
            for key in keys:
                children.ask(key, f"warm {args.warmup}")
            for r in range(total * generation // generations, total * (generation + 1) // generations):
                sgemm.append(sgemm_gflops(args.threads, device=args.device))
                for key in keys[r % len(keys):] + keys[:r % len(keys)]:
                    rounds[key].append(children.ask(key, f"run {args.round}"))
    return rounds, sgemm


def process_generations(args: argparse.Namespace) -> int:
    """How many processes measure each pipeline and model: --processes, but never more than there are rounds."""
    return max(1, min(args.processes, args.steps // args.round))


class Children:
    """One benchmark child process per key, driven through stdin; ended (or killed) on leaving."""

    def __init__(self, args: argparse.Namespace, keys: list) -> None:
        self.procs = {k: subprocess.Popen(child_command(args, *k, args.seed), stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True)
                      for k in keys}

    def ask(self, key, line: str) -> dict:
        child = self.procs[key]
        child.stdin.write(line + "\n")
        child.stdin.flush()
        answer = child.stdout.readline()
        if not answer:
            raise RuntimeError(f"benchmark child {child.args} died (exit code {child.wait()})")
        return json.loads(answer)

    def __enter__(self) -> "Children":
        return self

    def __exit__(self, kind, *_) -> None:
        try:
            if kind is None:
                for child in self.procs.values():
                    child.stdin.write("end\n")
                    child.stdin.flush()
                    child.wait(timeout=60)
        finally:
            for child in self.procs.values():
                child.kill()
                child.wait()


def median_spread(values: list[float]) -> dict:
    """Median, quartiles and the interquartile range relative to the median."""
    if len(values) < 2:
        return {"median": values[0], "q1": values[0], "q3": values[0], "relative_spread": 0.0, "rounds": len(values)}
    q1, med, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": med, "q1": q1, "q3": q3, "relative_spread": (q3 - q1) / med, "rounds": len(values)}


def summarize_child(rounds: list[dict]) -> dict:
    """Images/s and ms per step and phase over all rounds of one child (the old record's fields)."""
    images = sum(r["images"] for r in rounds)
    steps = sum(r["steps"] for r in rounds)
    seconds = {k: sum(r["seconds"][k] for r in rounds) for k in rounds[0]["seconds"]}
    summary = {"images_per_second": images / sum(seconds.values()), "steps": steps,
               "phases_ms": {k: 1000 * v / steps for k, v in seconds.items()},
               "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds)}
    if "peak_gpu_mb" in rounds[0]:
        summary["peak_gpu_mb"] = max(r["peak_gpu_mb"] for r in rounds)
    return summary


def round_rate(r: dict, phases=("data", "forward", "backward", "optimizer")) -> float:
    return r["images"] / sum(r["seconds"][k] for k in phases)


def benchmark(args: argparse.Namespace) -> dict:
    base, cand = compared(args)
    rounds, sgemm = run_rounds(args)
    record = {"threads": args.threads, "steps": args.steps, "round_steps": args.round, "device_type": args.device,
              "processes": process_generations(args),
              "data": "CIFAR-10" if args.data else "random images", "baseline": base, "candidate": cand,
              "engine": args.engine, "device": device_description(torch.device(args.device)), "cpu_model": cpu_model(), "cpu_isa": cpu_isa(),
              "native_bf16": native_bf16(),
              "sgemm_gflops": statistics.median(sgemm), "sgemm_spread": median_spread(sgemm), "models": {}}
    for model in MODELS:
        # A training step costs about 3x the forward pass (forward, input grads, weight grads).
        flops_per_image = 3 * 2 * multiply_adds(build_model(model))
        before, after = rounds[base, model], rounds[cand, model]
        ratios = [round_rate(a) / round_rate(b) for a, b in zip(after, before)]
        # The roof is fp32 sgemm's, so a bf16 candidate's share says how it compares with fp32's best.
        roof_shares = [round_rate(a) * flops_per_image / (g * 1e9) for a, g in zip(after, sgemm)]
        record["models"][model] = {
            base: summarize_child(before), cand: summarize_child(after),
            "ratio": statistics.median(ratios), "ratio_spread": median_spread(ratios),
            "roof_images_per_second": statistics.median(sgemm) * 1e9 / flops_per_image,
            "roof_share": median_spread(roof_shares),
        }
    # SE's cost in our engine: the model's step (forward, backward, update) and the whole step.
    model_phases = ("forward", "backward", "optimizer")
    record["se_cnn_step_ratio"] = median_spread(
        [round_rate(c, model_phases) / round_rate(s, model_phases)
         for c, s in zip(rounds[cand, "cnn"], rounds[cand, "se"])])
    record["se_cnn_step_ratio_with_data"] = median_spread(
        [round_rate(c) / round_rate(s) for c, s in zip(rounds[cand, "cnn"], rounds[cand, "se"])])
    record["speedup"] = min(record["models"][m]["ratio"] for m in MODELS)
    spreads = [record["models"][m]["ratio_spread"]["relative_spread"] for m in MODELS]
    record["trustworthy"] = max(spreads) <= TOO_WIDE
    return record


def print_record(record: dict) -> None:
    base, cand = record["baseline"], record["candidate"]
    print(f"{record['device']}; sgemm {record['sgemm_gflops']:.0f} GFLOP/s "
          f"(median of {record['sgemm_spread']['rounds']} rounds)")
    print(f"threads {record['threads']}, data {record['data']}, {record['steps']} timed steps of batch 64 "
          f"per pipeline and model, in rounds of {record['round_steps']}, in {record['processes']} processes each")
    print(f"our engine: {record['engine']}")
    for model, m in record["models"].items():
        for name in (base, cand):
            r = m[name]
            ph = " ".join(f"{k} {v:.1f}" for k, v in r["phases_ms"].items())
            print(f"{model:>3} {name:>9}: {r['images_per_second']:7.0f} images/s  "
                  f"{100 * r['images_per_second'] / m['roof_images_per_second']:4.1f}% of roof  "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB  ms/step: {ph}")
        sp = m["ratio_spread"]
        print(f"{model:>3} ratio {cand}/{base}: median {sp['median']:.2f} (quartiles {sp['q1']:.2f}-{sp['q3']:.2f} "
              f"over {sp['rounds']} rounds); {cand} at {100 * m['roof_share']['median']:.1f}% of the sgemm roof")
    st, sd = record["se_cnn_step_ratio"], record["se_cnn_step_ratio_with_data"]
    print(f"SE/CNN step time ({cand}): {st['median']:.3f} without data ({st['q1']:.3f}-{st['q3']:.3f}), "
          f"{sd['median']:.3f} with data")
    if cand == BF16 and not record["native_bf16"]:
        print("note: this CPU has neither AMX nor AVX-512 BF16: bf16 was emulated (--emulated-bf16)")
    if not record["trustworthy"]:
        print(f"warning: the ratios spread by more than {100 * TOO_WIDE:.0f}% between rounds (other load on "
              "this machine, or processes that run at different speeds): too wide to trust as exact; more --steps "
              "only adds rounds and does not narrow it, a quieter machine does")


def faithfulness_jobs(args: argparse.Namespace, digest: str) -> tuple[list[tuple[str, str, int]], list[dict]]:
    """The (pipeline, model, seed) runs to train, the lesson's (the long ones) first, and the runs kept.

    With --reuse, a run that --out already holds for the same epochs is kept, unless it records
    another code digest than the engine's now (a run recorded before digests were kept is trusted).
    """
    kept = []
    if args.reuse and args.out and args.out.exists():
        from . import atomic

        old = atomic.read_json(args.out, "the faithfulness record of python -m se_attention.bench", ("runs", "epochs"))
        if old["epochs"] == args.faithfulness:
            kept = [r for r in old["runs"] if r["seed"] in args.seeds and r.get("code_digest", digest) == digest]
    if getattr(args, "lesson_runs", None):
        kept = [r for r in kept if r["pipeline"] != "lesson"] + lesson_runs(args.lesson_runs, args.faithfulness, args.seeds)
    done = {(r["pipeline"], r["model"], r["seed"]) for r in kept}
    jobs = [(p, m, s) for p in compared(args) for m in MODELS for s in args.seeds if (p, m, s) not in done]
    return jobs, kept


def lesson_runs(path: Path, epochs: int, seeds: list[int]) -> list[dict]:
    """The lesson's pipeline's runs of another faithfulness record, for --lesson-runs.

    The lesson's runs are the long ones (PIL, one image at a time); a record of them serves every
    engine compared with them. Each must be there, for the same epochs, for every model and seed.
    """
    from . import atomic

    record = atomic.read_json(path, "the faithfulness record of python -m se_attention.bench", ("runs", "epochs"))
    if record["epochs"] != epochs:
        raise ValueError(f"{path}: expected runs of {epochs} epochs, found {record['epochs']}")
    runs = {(r["model"], r["seed"]): r for r in record["runs"] if r["pipeline"] == "lesson"}
    missing = [f"{m} seed {s}" for m in MODELS for s in seeds if (m, s) not in runs]
    if missing:
        raise ValueError(f"{path}: expected the lesson's runs of every model and seed, missing {', '.join(missing)}")
    return [runs[m, s] for m in MODELS for s in seeds]


def run_faithfulness(args: argparse.Namespace) -> int:
    """Each (pipeline, model, seed) run in its own process with one thread, --jobs of them at a time."""
    if args.data is None:
        print("error: --faithfulness needs --data (a prepared cifar10.npz)", file=sys.stderr)
        return 2
    from .stamps import code_digest

    digest = code_digest("bench", extra_modules=["se"])  # SEBlock is loaded by name; the C++ kernels are in it
    try:  # a missing, unreadable or incomplete record is a ValueError (atomic.UnreadableFile) that names the file
        jobs, results = faithfulness_jobs(args, digest)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    lesson_kept = sum(r["pipeline"] == "lesson" for r in results) if args.lesson_runs else 0
    if lesson_kept:
        print(f"the lesson's {lesson_kept} runs come from {args.lesson_runs}")
    if len(results) > lesson_kept:
        print(f"kept {len(results) - lesson_kept} runs from {args.out}")
    args.threads = 1
    todo, running = list(jobs), []
    while todo or running:
        while todo and len(running) < args.jobs:
            pipeline, model, seed = todo.pop(0)
            cmd = child_command(args, pipeline, model, seed)
            running.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
        proc = running.pop(0)
        out, _ = proc.communicate()
        if proc.returncode:
            for other in running:
                other.kill()
            print(f"error: a faithfulness run failed ({' '.join(proc.args)})", file=sys.stderr)
            return 1
        result = {**json.loads(out.strip().splitlines()[-1]), "code_digest": digest}
        results.append(result)
        print(f"{result['model']:>3} {result['pipeline']:>9} seed {result['seed']}: test accuracy per epoch "
              f"{[round(a, 2) for a in result['test_acc']]}", flush=True)
    results.sort(key=lambda r: (MODELS.index(r["model"]), PIPELINES.index(r["pipeline"]), r["seed"]))
    if args.out:
        from . import atomic

        atomic.write_json(args.out, {"epochs": args.faithfulness, "seeds": sorted(args.seeds),
                                     "pipelines": list(compared(args)), "cpu_model": cpu_model(), "cpu_isa": cpu_isa(),
                                     "native_bf16": native_bf16(), "threads_per_run": 1, "engine": args.engine,
                                     "lesson_runs_from": args.lesson_runs.name if args.lesson_runs else None,
                                     "runs": results})
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.bench", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=None, help="prepared cifar10.npz (default: random images)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--steps", type=int, default=120, help="timed training steps per pipeline and model")
    p.add_argument("--warmup", type=int, default=15)
    p.add_argument("--round", type=int, default=10, help="steps per turn when the two pipelines take turns")
    p.add_argument("--processes", type=int, default=4,
                   help="processes per pipeline and model, one after another, each taking its share of the rounds")
    p.add_argument("--faithfulness", type=int, metavar="EPOCHS",
                   help="instead of timing, train EPOCHS full epochs through each pipeline (needs --data) "
                        "and compare test accuracy; writes JSON to --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", help="with --faithfulness: the seeds (default: --seed)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="with --faithfulness: runs at a time, one thread each (default: the CPUs)")
    p.add_argument("--reuse", action="store_true",
                   help="with --faithfulness: keep the runs --out already holds (same epochs, same code digest)")
    p.add_argument("--lesson-runs", type=Path, metavar="RECORD",
                   help="with --faithfulness: take the lesson's runs from this faithfulness record instead of "
                        "training them again (the long ones); the new record names it")
    p.add_argument("--bf16", action="store_true",
                   help="opt-in study: compare our engine in fp32 with our engine under bf16 autocast instead of "
                        "the lesson's pipeline with ours (speed, or with --faithfulness accuracy)")
    p.add_argument("--emulated-bf16", action="store_true",
                   help="with --bf16: run even where the CPU has neither AMX nor AVX-512 BF16 (emulated bf16)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where both pipelines train: cpu, or cuda (a GPU; timing only, our engine against the "
                        "lesson's pipeline)")
    p.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    p.add_argument("--child", nargs=2, metavar=("PIPELINE", "MODEL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        if args.faithfulness:
            print(json.dumps(faithfulness(*args.child, args.data, args.faithfulness, args.seed, args.threads)))
        else:
            measure(*args.child, args.data, args.threads, args.device)
        return 0
    if args.device == "cuda" and not args.child and (args.bf16 or args.faithfulness):
        p.error("--device cuda times our engine against the lesson's pipeline: no --bf16 "
                "(a CPU study), no --faithfulness")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: torch sees no CUDA device here", file=sys.stderr)
        return 2
    if args.processes < 1:
        p.error(f"--processes: expected at least 1, found {args.processes}")
    if args.lesson_runs and (not args.faithfulness or args.bf16):
        p.error("--lesson-runs goes with --faithfulness against the lesson's pipeline (not --bf16)")
    if args.bf16 and not native_bf16() and not args.emulated_bf16:
        print(f"error: --bf16: this CPU ({cpu_model()}, torch {cpu_isa()}) has neither AMX nor AVX-512 BF16, so bf16 "
              "would be emulated and its speed would say nothing about bf16 hardware; run it on such a CPU, "
              "or pass --emulated-bf16 to measure anyway (the record says it was emulated)", file=sys.stderr)
        return 2
    from . import fused

    # Built once here, before the children load it from the cache; where it cannot be built, ours trains
    # module by module, as train.py would here, and the record says so.
    args.engine = "fused CPU kernels" if fused.available() else "PyTorch modules (the fused kernels could not be built)"
    if args.faithfulness:
        args.seeds = args.seeds or [args.seed]
        return run_faithfulness(args)

    record = benchmark(args)
    print_record(record)
    if args.out:
        from . import atomic

        atomic.write_json(args.out, record)
    print(f"{'bf16 speedup' if args.bf16 else 'speedup'} {record['speedup']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
