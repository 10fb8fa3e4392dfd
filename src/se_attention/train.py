"""Train one model with one seed on the prepared CIFAR-10 file: the lesson's recipe, made fast.

    python -m se_attention.train --recipe config/config.yaml --model se --seed 0 \
        --data data/paper/cifar10.npz --out results/paper/runs/se/seed0

The loop is the lesson's (Adam, batch 64, cross-entropy, ReduceLROnPlateau stepped once per
epoch on the monitored loss); only how the work is done differs: the uint8 set lives in one tensor
in CPU memory, each batch is augmented and normalised by one kernel and sent to the device, and the
conv blocks train through the fused kernels (se_attention.fused; module by module where they cannot
be built). After every epoch the full state is saved, so a killed run resumes where it stopped, on
a CPU or a GPU, and ends with the same numbers.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import atomic, attention, fused
from .augment import AugmentConfig, augment_batch, normalize
from .cnn import MODELS, build_model, parameter_count
from .config import load_recipe
from .data import DataError, load_npz
from .provenance import device_description, git_commit, package_versions
from .stamps import code_digest


class TrainingError(Exception):
    """Training cannot go on (for example a non-finite loss); the message says where."""


@dataclass
class Split:
    x: torch.Tensor  # uint8, N x 3 x 32 x 32, channels_last in memory
    y: torch.Tensor  # int64, N


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def keep_freed_memory(mmap_threshold_mb: int = 32) -> bool:
    """Ask glibc to reuse freed memory for the next step instead of handing it back to the kernel.

    Each step allocates and frees tens of MB of activations and gradients. By default glibc serves
    blocks this big with fresh mmap pages, which the kernel zeroes on first touch: here ~3,000-4,000
    page faults and ~10 ms of kernel time per step (getrusage), against ~100 with these settings.
    Blocks up to ``mmap_threshold_mb`` then come from the heap, which keeps up to 16x that free.
    Returns False (and changes nothing) where the C library is not glibc.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's <malloc.h>
    size = mmap_threshold_mb << 20
    return bool(mallopt(m_mmap_threshold, size)) and bool(mallopt(m_trim_threshold, 16 * size))


def make_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Adam:
    """The lesson's Adam. fused=True runs the update of all 1.15 M weights as one kernel
    instead of a dozen passes per tensor: the same maths, a third of the optimizer's time."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=True)


def load_splits(path: Path, val_per_class: int) -> dict[str, Split]:
    """The prepared set in CPU memory, where the batches are made, whatever device trains."""
    arrays = load_npz(path)

    def to_split(x: np.ndarray, y: np.ndarray) -> Split:
        # The npz holds N x H x W x C, which is exactly channels_last memory for N x C x H x W.
        return Split(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(y))

    splits = {"train": to_split(arrays["x_train"], arrays["y_train"]), "test": to_split(arrays["x_test"], arrays["y_test"])}
    if val_per_class:
        # A fixed split (seed 0) shared by every training seed, so seeds differ only in training.
        y = arrays["y_train"]
        rng = np.random.default_rng(0)
        val_idx = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:val_per_class] for c in np.unique(y)]))
        train_idx = np.setdiff1d(np.arange(len(y)), val_idx)
        splits["val"] = to_split(arrays["x_train"][val_idx], y[val_idx])
        splits["train"] = to_split(arrays["x_train"][train_idx], y[train_idx])
    return splits


def epoch_batches(split: Split, aug: AugmentConfig, mean, std, batch_size: int, g: torch.Generator,
                  device: torch.device = fused.CPU, kernel: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of augmented, normalised, channels-last batches in a random order drawn from ``g``.

    Made on the CPU (the images and the generator live there): with ``kernel``, each batch is one
    pass of the fused kernel (fused.augmented_batch); without, module by module (augment.py). Both
    draw the same numbers from ``g`` in the same order, so they give the same batches to float
    rounding. For a GPU each batch is sent without the host waiting for the copy (fused.sent).
    """
    if split.x.device.type != "cpu" or g.device.type != "cpu":
        raise ValueError("batches are made on the CPU: expected the images and the generator there, "
                         f"found them on {split.x.device} and {g.device}")
    n = len(split.y)
    order = torch.randperm(n, generator=g)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        if kernel:
            x = fused.augmented_batch(split.x, idx, aug, mean, std, g)
        else:
            # The colour ops work per channel plane: ~20% faster on a contiguous N x C x H x W copy.
            x = normalize(augment_batch(split.x[idx].contiguous(), aug, g), mean, std)
            x = x.contiguous(memory_format=torch.channels_last)
        yield fused.sent(x, device), fused.sent(split.y[idx], device)


def prepare_engine(model: torch.nn.Module, device: torch.device) -> tuple[bool, str]:
    """Train ``model`` through the fused kernels (se_attention.fused) where they can be built.

    Returns whether the kernels make the batches, and what trains the model in words, for the run's
    provenance. Without a C++ compiler the model trains module by module, drawing the same random
    numbers, so the run differs from a kernel run to float rounding only.
    """
    try:
        fused.accelerate(model)
    except fused.KernelUnavailable as exc:
        fused.uniform_dropout(model)
        print(f"warning: the fused kernels cannot be built here, so training runs module by module "
              f"(slower, the same maths): {exc}", file=sys.stderr)
        return False, "PyTorch modules (the fused kernels could not be built)"
    if device.type == "cpu":
        return True, "fused CPU kernels"
    return True, f"fused CPU kernel for the batches; the model module by module on {device.type}"


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The lesson's step, unchanged: forward, cross-entropy, backward, update. Returns loss and logits."""
    optimizer.zero_grad(set_to_none=True)
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss.detach(), logits.detach()


@torch.no_grad()
def evaluate(model, split: Split, mean, std, batch_size: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy per image and accuracy in percent, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    for i in range(0, len(split.y), batch_size):
        x = split.x[i : i + batch_size].to(device)
        x = normalize(x.float().div_(255), mean, std).contiguous(memory_format=torch.channels_last)
        logits = model(x)
        y = split.y[i : i + batch_size].to(device)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    return loss_sum.item() / len(split.y), 100.0 * correct.item() / len(split.y)


def _rng_state(g: torch.Generator) -> dict:
    state = {"generator": g.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(g: torch.Generator, state: dict) -> None:
    g.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(recipe: dict, model_name: str, seed: int, data: Path, out: Path, device: torch.device,
          data_provenance: dict | None = None, progress: bool = True) -> dict:
    from tqdm import tqdm

    tr = recipe["train"]
    mean, std = recipe["normalize"]["mean"], recipe["normalize"]["std"]
    aug = AugmentConfig(**recipe["augment"])
    out.mkdir(parents=True, exist_ok=True)
    resume_path = out / "resume.pt"

    keep_freed_memory()
    torch.manual_seed(seed)
    model = build_model(model_name, **recipe["model"]).to(device).to(memory_format=torch.channels_last)
    kernel, engine = prepare_engine(model, device)
    optimizer = make_optimizer(model, tr["lr"])
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", patience=tr["plateau"]["patience"], factor=tr["plateau"]["factor"])
    g = torch.Generator().manual_seed(seed)  # the batches' draws, on the CPU where the batches are made
    splits = load_splits(data, tr["val_per_class"] if tr["monitor"] == "val" else 0)
    train_split = splits["train"]
    n_train, batch = len(train_split.y), tr["batch_size"]
    steps_per_epoch = math.ceil(n_train / batch)

    # The resume key includes the code: epochs trained by other code must not be continued.
    key = {"recipe": recipe, "model_name": model_name, "seed": seed,
           "code_digest": code_digest("train", attention.stamp_modules(model_name))}
    history = {"iter_loss": [], "epochs": []}
    start_epoch = 0
    if resume_path.exists():
        # Loaded on the CPU: the random-number states are CPU tensors whatever the device (torch refuses
        # a generator state on a GPU); load_state_dict puts weights and Adam's moments on the model's device.
        state = torch.load(resume_path, map_location="cpu", weights_only=True)
        if {k: state.get(k) for k in key} == key:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            _set_rng_state(g, state["rng"])
            history = json.loads(state["history"])
            start_epoch = state["epoch"]
            print(f"resuming from {resume_path} after epoch {start_epoch}", file=sys.stderr)
        else:
            print(f"ignoring {resume_path}: it was written for another recipe, model, seed or training code; "
                  "starting from epoch 1", file=sys.stderr)

    for epoch in range(start_epoch, tr["epochs"]):
        t0 = time.perf_counter()
        model.train()
        losses = torch.empty(steps_per_epoch, device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        bar = tqdm(epoch_batches(train_split, aug, mean, std, batch, g, device, kernel), total=steps_per_epoch,
                   desc=f"{model_name} seed {seed} epoch {epoch + 1}/{tr['epochs']}",
                   disable=not progress, file=sys.stderr,
                   mininterval=2.0 if sys.stderr.isatty() else 30.0)
        for step, (x, y) in enumerate(bar):
            loss, logits = train_step(model, optimizer, x, y)
            losses[step] = loss
            correct += (logits.argmax(1) == y).sum()
            # Reading a value on a CPU costs nothing; on a GPU it would make the host wait for the device,
            # so there the losses are read once, at the end of the epoch, below.
            if step % 50 == 0 and device.type == "cpu":
                if not torch.isfinite(loss):
                    raise TrainingError(f"{model_name} seed {seed}: loss became {loss.item()} at epoch {epoch + 1}, "
                                        f"step {step + 1}; no metrics were written")
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        epoch_losses = losses.tolist()
        bad = [i for i, v in enumerate(epoch_losses) if not math.isfinite(v)]
        if bad:
            raise TrainingError(f"{model_name} seed {seed}: loss became {epoch_losses[bad[0]]} at epoch {epoch + 1}, "
                                f"step {bad[0] + 1}; no metrics were written")
        train_time = time.perf_counter() - t0
        test_loss, test_acc = evaluate(model, splits["test"], mean, std)
        record = {
            "epoch": epoch + 1,
            "train_loss": sum(epoch_losses) / len(epoch_losses),
            "train_acc": 100.0 * correct.item() / n_train,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "lr": optimizer.param_groups[0]["lr"],
            "train_seconds": train_time,
            "images_per_second": n_train / train_time,
        }
        monitored = test_loss
        if "val" in splits:
            record["val_loss"], record["val_acc"] = evaluate(model, splits["val"], mean, std)
            monitored = record["val_loss"]
        scheduler.step(monitored)
        history["iter_loss"] += epoch_losses
        history["epochs"].append(record)
        print(json.dumps(record), file=sys.stderr)
        atomic.save_torch(resume_path, {
            **key, "epoch": epoch + 1,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": _rng_state(g), "history": json.dumps(history),
        })

    epochs = history["epochs"]
    best = max(epochs, key=lambda r: r["test_acc"])
    metrics = {
        "model": model_name,
        "seed": seed,
        "epochs": len(epochs),
        "final_test_acc": epochs[-1]["test_acc"],
        "final_test_loss": epochs[-1]["test_loss"],
        "best_test_acc": best["test_acc"],
        "best_epoch": best["epoch"],
        "final_train_acc": epochs[-1]["train_acc"],
        "parameters": parameter_count(model),
        "train_images": n_train,
        "test_images": len(splits["test"].y),
        "seconds_per_epoch": sum(r["train_seconds"] for r in epochs) / len(epochs),
        "images_per_second": sum(r["images_per_second"] for r in epochs) / len(epochs),
        "provenance": {
            "recipe": recipe,
            "data": data_provenance,
            "device": device_description(device),
            "engine": engine,
            "versions": package_versions(),
            "git": git_commit(),
            # Digest of the code that trained it (se_attention.stamps): the git commit alone does
            # not say which edits a dirty checkout had.
            "code_digest": key["code_digest"],
        },
    }
    atomic.save_torch(out / "model.pt", {k: v.cpu() for k, v in model.state_dict().items()})
    atomic.write_json(out / "history.json", history)
    atomic.write_json(out / "metrics.json", metrics)
    resume_path.unlink(missing_ok=True)
    return metrics


MAX_SEED = 2**32 - 1  # the largest seed every generator here accepts (numpy's legacy ones stop at 2**32)


def seed_type(text: str) -> int:
    seed = int(text)
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {MAX_SEED}, found {seed}")
    return seed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.train", description=__doc__.split("\n")[0])
    p.add_argument("--recipe", required=True, help="a config YAML file, or its JSON as a string")
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--seed", type=seed_type, required=True, help=f"0 to {MAX_SEED}")
    p.add_argument("--data", type=Path, required=True, help="prepared cifar10.npz")
    p.add_argument("--data-provenance", type=Path, help="the provenance JSON written beside the npz")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        recipe = load_recipe(args.recipe)
        provenance = (atomic.read_json(args.data_provenance, "the provenance JSON of the prepared data")
                      if args.data_provenance else None)
        metrics = train(recipe, args.model, args.seed, args.data, args.out, pick_device(args.device),
                        provenance, progress=not args.no_progress)
    except (DataError, TrainingError, ValueError, atomic.DiskFull) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.model} seed {args.seed}: final test accuracy {metrics['final_test_acc']:.2f}% "
          f"after {metrics['epochs']} epochs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
