"""Training throughput: the lesson's data pipeline against ours, same model, data and threads.

    python -m se_attention.bench --data data/paper/cifar10.npz --threads 2 --out results/paper/performance/speed.json
    python -m se_attention.bench --data data/paper/cifar10.npz --faithfulness 5 \
        --out results/paper/performance/faithfulness.json

The lesson's pipeline is reproduced as written: PIL images in memory, torchvision transforms
(RandomCrop, flip, ColorJitter, RandomRotation, ToTensor, Normalize) in a DataLoader with batch
64 and no workers. Ours is the training engine's own code (train.py): the uint8 set in one tensor,
augmented a batch at a time, channels_last, fused Adam, freed memory reused (keep_freed_memory).
Both train the same model for the same number of steps, each pipeline in its own process (so
peak memory is its own), the two taking turns in short rounds so that a slow spell of a shared
machine falls on both. Prints images/s, the ratio, the share of the compute roof (measured sgemm
throughput x FLOPs per training image), peak memory, a per-phase profile of ours, and last
`speedup <ratio>`: the smaller of the two models' ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .cnn import build_model, multiply_adds
from .provenance import device_description
from .train import Split, epoch_batches, evaluate, keep_freed_memory, make_optimizer, train_step

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


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


def our_batches(x: np.ndarray, y: np.ndarray, seed: int):
    """The training engine's own batches (train.epoch_batches), epoch after epoch."""
    from .augment import AugmentConfig

    split = Split(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(np.asarray(y, dtype=np.int64)))
    g = torch.Generator().manual_seed(seed)
    while True:
        yield from epoch_batches(split, AugmentConfig(), MEAN, STD, 64, g)


def setup(pipeline: str, model_name: str, x: np.ndarray, y: np.ndarray, seed: int):
    """Model, optimizer and endless batches of one pipeline, with the lesson's Adam 1e-3.

    The lesson's pipeline runs as written; ours as train.py runs it (channels_last weights,
    fused Adam, freed memory kept).
    """
    torch.manual_seed(seed)
    model = build_model(model_name)
    if pipeline == "ours":
        keep_freed_memory()
        model = model.to(memory_format=torch.channels_last)
        optimizer = make_optimizer(model, 1e-3)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return model, optimizer, (lesson_batches if pipeline == "lesson" else our_batches)(x, y, seed)


def measure(pipeline: str, model_name: str, data: Path | None, threads: int) -> dict:
    """Train on command, timing each phase; runs inside a fresh process driven through stdin.

    The parent sends ``warm N`` (untimed steps), ``run N`` (timed steps) and ``end``; the child
    answers each with a line. Two children, one per pipeline, take turns in short rounds, so a
    slow spell of a shared machine falls on both pipelines alike and the ratio stays fair.
    """
    torch.set_num_threads(threads)
    x, y = load_images(data, 10_000)
    model, optimizer, batches = setup(pipeline, model_name, x, y, seed=0)
    phases = dict(data=0.0, forward=0.0, backward=0.0, optimizer=0.0)
    images = steps = 0
    for line in sys.stdin:
        command, _, count = line.strip().partition(" ")
        if command == "end":
            break
        for _ in range(int(count)):
            t0 = time.perf_counter()
            xb, yb = next(batches)
            t1 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            t2 = time.perf_counter()
            loss.backward()
            t3 = time.perf_counter()
            optimizer.step()
            t4 = time.perf_counter()
            if command == "run":
                for k, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    phases[k] += dt
                images += len(yb)
                steps += 1
        print("ok", flush=True)
    total = sum(phases.values())
    return {"images_per_second": images / total, "steps": steps,
            "phases_ms": {k: 1000 * v / steps for k, v in phases.items()},
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


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


def sgemm_gflops(threads: int, size: int = 1024, repeats: int = 20) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - t0) / 1e9


def child_command(args: argparse.Namespace, pipeline: str, model: str) -> list[str]:
    cmd = [sys.executable, "-m", "se_attention.bench", "--child", pipeline, model,
           "--threads", str(args.threads), "--seed", str(args.seed)]
    if args.data:
        cmd += ["--data", str(args.data)]
    if args.faithfulness:
        cmd += ["--faithfulness", str(args.faithfulness)]
    return cmd


def run_side_by_side(args: argparse.Namespace, model: str) -> dict[str, dict]:
    """Both pipelines for one model, each in its own process, taking turns in rounds."""
    children = {p: subprocess.Popen(child_command(args, p, model), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True) for p in ("lesson", "ours")}

    def ask(child: subprocess.Popen, line: str) -> str:
        child.stdin.write(line + "\n")
        child.stdin.flush()
        answer = child.stdout.readline()
        if not answer:
            raise RuntimeError(f"benchmark child {child.args} died (exit code {child.wait()})")
        return answer

    try:
        for child in children.values():
            ask(child, f"warm {args.warmup}")
        rounds = max(1, args.steps // args.round)
        for _ in range(rounds):
            for child in children.values():
                ask(child, f"run {args.round}")
        return {p: json.loads(ask(child, "end")) for p, child in children.items()}
    finally:
        for child in children.values():
            child.kill()
            child.wait()


def run_faithfulness(args: argparse.Namespace) -> int:
    """All four (pipeline, model) runs side by side, one thread each: the lesson's runs are the long ones."""
    if args.data is None:
        print("error: --faithfulness needs --data (a prepared cifar10.npz)", file=sys.stderr)
        return 2
    args.threads = 1
    jobs = [(p, m) for m in ("cnn", "se") for p in ("lesson", "ours")]
    procs = [subprocess.Popen(child_command(args, p, m), stdout=subprocess.PIPE, text=True) for p, m in jobs]
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            print(f"error: a faithfulness run failed ({proc.args})", file=sys.stderr)
            return 1
        results.append(json.loads(out.strip().splitlines()[-1]))
    for r in results:
        print(f"{r['model']:>3} {r['pipeline']:>6}: test accuracy per epoch {[round(a, 2) for a in r['test_acc']]}")
    if args.out:
        from . import atomic

        atomic.write_json(args.out, {"epochs": args.faithfulness, "seed": args.seed, "runs": results})
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.bench", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=None, help="prepared cifar10.npz (default: random images)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--steps", type=int, default=120, help="timed training steps per pipeline and model")
    p.add_argument("--warmup", type=int, default=15)
    p.add_argument("--round", type=int, default=10, help="steps per turn when the two pipelines take turns")
    p.add_argument("--faithfulness", type=int, metavar="EPOCHS",
                   help="instead of timing, train EPOCHS full epochs through each pipeline (needs --data) "
                        "and compare test accuracy; writes JSON to --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    p.add_argument("--child", nargs=2, metavar=("PIPELINE", "MODEL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        if args.faithfulness:
            result = faithfulness(*args.child, args.data, args.faithfulness, args.seed, args.threads)
        else:
            result = measure(*args.child, args.data, args.threads)
        print(json.dumps(result))
        return 0
    if args.faithfulness:
        return run_faithfulness(args)

    gflops = sgemm_gflops(args.threads)
    print(f"threads {args.threads}, data {args.data or 'random images'}, {args.steps} timed steps of batch 64")
    print(f"sgemm {gflops:.0f} GFLOP/s")
    ratios, record = [], {"threads": args.threads, "steps": args.steps, "sgemm_gflops": gflops,
                          "data": "CIFAR-10" if args.data else "random images", "models": {}}
    for model in ("cnn", "se"):
        # A training step costs about 3x the forward pass (forward, input grads, weight grads).
        flops_per_image = 3 * 2 * multiply_adds(build_model(model))
        roof = gflops * 1e9 / flops_per_image
        runs = run_side_by_side(args, model)
        lesson, ours = runs["lesson"], runs["ours"]
        ratio = ours["images_per_second"] / lesson["images_per_second"]
        ratios.append(ratio)
        for name, r in (("lesson", lesson), ("ours", ours)):
            ph = " ".join(f"{k} {v:.1f}" for k, v in r["phases_ms"].items())
            print(f"{model:>3} {name:>6}: {r['images_per_second']:7.0f} images/s  "
                  f"{100 * r['images_per_second'] / roof:4.1f}% of roof ({roof:.0f} images/s)  "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB  ms/step: {ph}")
        print(f"{model:>3} ratio ours/lesson: {ratio:.2f}")
        record["models"][model] = {"lesson": lesson, "ours": ours, "ratio": ratio, "roof_images_per_second": roof}
    record["speedup"] = min(ratios)
    record["device"] = device_description(torch.device("cpu"))
    if args.out:
        from . import atomic

        atomic.write_json(args.out, record)
    print(f"speedup {min(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
