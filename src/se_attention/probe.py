"""One pass of a trained model over the test set, saving everything the figures need.

    python -m se_attention.probe --recipe config/config.yaml --model se \
        --weights results/paper/runs/se/seed0/model.pt --data data/paper/cifar10.npz \
        --sample-images 6 --out results/paper/runs/se/seed0/probe.npz

The probe file is small and committed, so figures can be redrawn without the dataset or a GPU.
It holds: labels and predictions; the confusion matrix; for a few fixed test images (the first
test image of each of the first classes, the same for every model) the images, the feature maps
of each block (conv output as the lesson hooks it, after BN+ReLU, and for attention models after
the attention, with the channel gates and, for spatial attention, the spatial gate maps) and
Grad-CAM maps for the predicted and the true class; and for channel-attention models the
per-class mean gate of every channel, the raw gates of a fixed random sample of test images
(sample_of_gates says which) and, for every test image and block, the Pearson correlation across
channels between a channel's gate and its squeeze input (gate_activation_r_<k>); and for a few
misclassified test images (misclassified_index) their Grad-CAM maps for the predicted and the true class.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np
import scipy.stats
import torch

from . import atomic
from .augment import normalize
from .cnn import MODELS, build_model
from .config import load_recipe
from .data import DataError, load_npz
from .attention import AFTER_POOL
from .train import pick_device

GATE_SAMPLE = 1000  # test images whose raw gates are kept, for distributions and class statistics
MISCLASSIFIED = 4  # misclassified test images whose Grad-CAM maps are kept


def rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row of ``a`` with the same row of ``b`` (N x C -> N); NaN where a row is constant."""
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    norm = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, (a * b).sum(1) / norm, np.nan)


def misclassified_indices(labels: np.ndarray, preds: np.ndarray, count: int) -> np.ndarray:
    """The first misclassified test images, one per true class, in test-set order, at most ``count``."""
    chosen, classes = [], set()
    for i in np.flatnonzero(labels != preds):
        if int(labels[i]) not in classes:
            chosen.append(int(i))
            classes.add(int(labels[i]))
        if len(chosen) == count:
            break
    return np.array(chosen, dtype=np.int64)


def sample_indices(labels: np.ndarray, count: int) -> np.ndarray:
    """The first test image of each of the first ``count`` classes."""
    return np.array([int(np.flatnonzero(labels == c)[0]) for c in range(count) if (labels == c).any()])


# --8<-- [start:grad_cam]
def grad_cam(model: torch.nn.Module, x: torch.Tensor, classes: list[int],
             layer: torch.nn.Module | None = None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) of the last block's activation, as the grad-cam library computes it.

    The target layer is the last block's attention slot: the activation after BN+ReLU, and for SE
    models after the SE rescaling, just before the final pooling. Maps are upsampled to the
    input size and scaled to [0, 1] per image by the library. ``layer`` takes another target.
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with torch.enable_grad(), GradCAM(model=model, target_layers=[layer or model.blocks[-1].se]) as cam:
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in classes]).astype(np.float32)
# --8<-- [end:grad_cam]


def spatial_maps(model: torch.nn.Module) -> dict[int, torch.Tensor]:
    """The spatial gate map (N x H x W) that each block with spatial attention (CBAM, spatial) kept from the last forward."""
    maps = {}
    for k, block in enumerate(model.blocks, start=1):
        last = getattr(getattr(block.se, "spatial", block.se), "last_map", None)
        if last is not None:
            maps[k] = last[:, 0]
    return maps


# --8<-- [start:spatial_agreement]
def spatial_agreement(gates: dict[int, np.ndarray], cams: np.ndarray, pairings: int = 8,
                      seed: int = 1) -> dict[str, np.ndarray]:
    """Whether spatial attention looks where Grad-CAM says the decision came from, per image and block.

    Spearman's rho between a block's spatial gates (N x H x W) and the same image's Grad-CAM of the
    true class (N x 32 x 32, averaged down to H x W); and, as the null, the mean rho with the
    Grad-CAM of another image of the sample over a few random pairings. Both maps may share a layout
    common to all images (the centre, where CIFAR-10's objects usually sit, or the borders): only rho
    above the other images' says the gates follow *this* object. NaN where a map is constant, and
    for the null where the sample has a single image.
    """
    n = len(cams)
    rng = np.random.default_rng(seed)
    partners = []
    for _ in range(pairings if n > 1 else 0):
        order, other = rng.permutation(n), np.empty(n, dtype=np.int64)
        other[order] = np.roll(order, 1)  # every image paired with another one, never itself
        partners.append(other)
    out = {}
    for k, g in gates.items():
        h, w = g.shape[1:]
        cam = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(cams)[:, None], (h, w))[:, 0].numpy()
        g_rank = scipy.stats.rankdata(g.reshape(n, -1), axis=1)
        cam_rank = scipy.stats.rankdata(cam.reshape(n, -1), axis=1)
        out[f"spatial_gradcam_rho_{k}"] = rowwise_pearson(g_rank, cam_rank).astype(np.float32)
        null = [rowwise_pearson(g_rank, cam_rank[other]) for other in partners]
        out[f"spatial_gradcam_rho_other_{k}"] = (np.mean(null, axis=0) if null else np.full(n, np.nan)).astype(np.float32)
    return out
# --8<-- [end:spatial_agreement]


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    # weights_only refuses pickled code: a checkpoint is data, never a program.
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own message suggests weights_only=False, exactly what must not be done here.
        raise ValueError(f"{path}: refusing to load this checkpoint: it holds more than tensors "
                         "(possibly code); only a state_dict of weights is accepted") from exc
    model.load_state_dict(state)


@torch.no_grad()
def run_probe(recipe: dict, model_name: str, weights: Path, data: Path, sample_images: int,
              device: torch.device, batch_size: int = 500) -> dict[str, np.ndarray]:
    arrays = load_npz(data)
    x_all = torch.from_numpy(arrays["x_test"]).permute(0, 3, 1, 2)
    y_all = arrays["y_test"]
    mean, std = recipe["normalize"]["mean"], recipe["normalize"]["std"]
    model = build_model(model_name, **recipe["model"])
    load_weights(model, weights)
    model.to(device).eval()

    def prep(x):
        return normalize(x.to(device).float().div(255), mean, std)

    # Channel attention (SE, ECA, CBAM's channel branch) keeps its last gates, N x C, per block.
    se_blocks = [b.se for b in model.blocks if hasattr(b.se, "last_gates")]
    # The squeeze input of each channel: the mean over H, W of the map the attention module receives.
    squeezed: list[torch.Tensor] = [None] * len(se_blocks)

    def keep_squeeze(k):
        def hook(module, inputs):
            squeezed[k] = inputs[0].float().mean(dim=(2, 3))
        return hook

    handles = [b.register_forward_pre_hook(keep_squeeze(k)) for k, b in enumerate(se_blocks)]
    preds, gates, corr = [], [[] for _ in se_blocks], [[] for _ in se_blocks]
    for i in range(0, len(y_all), batch_size):
        logits = model(prep(x_all[i : i + batch_size]))
        preds.append(logits.argmax(1).cpu().numpy())
        for k, block in enumerate(se_blocks):
            g = block.last_gates.cpu().numpy().astype(np.float64)
            gates[k].append(g)
            corr[k].append(rowwise_pearson(g, squeezed[k].cpu().numpy().astype(np.float64)))
    for h in handles:
        h.remove()
    pred = np.concatenate(preds)
    gates = [np.concatenate(g).astype(np.float64) for g in gates]
    # A fixed random subset, not the first images: prepared test sets are often sorted by class.
    sample = np.sort(np.random.default_rng(0).permutation(len(y_all))[:GATE_SAMPLE])
    counts = np.bincount(y_all, minlength=10)
    out: dict[str, np.ndarray] = {
        "labels": y_all.astype(np.int64),
        "preds": pred.astype(np.int64),
        "confusion": np.bincount(y_all * 10 + pred, minlength=100).reshape(10, 10),
    }
    if se_blocks:
        out["sample_of_gates"] = sample
    for k, g in enumerate(gates, start=1):
        sums = np.zeros((10, g.shape[1]))
        np.add.at(sums, y_all, g)
        out[f"gates_class_mean_{k}"] = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        out[f"gates_sample_{k}"] = g[sample].astype(np.float16)
        out[f"gate_activation_r_{k}"] = np.concatenate(corr[k - 1]).astype(np.float32)

    # Feature maps of the sample images, block by block, in the order the network computes them.
    idx = sample_indices(y_all, sample_images)
    out["sample_index"] = idx
    out["sample_images"] = arrays["x_test"][idx]
    out["sample_labels"] = y_all[idx]
    out["sample_preds"] = pred[idx]
    x = prep(x_all[idx])
    # --8<-- [start:feature_maps]
    for k, block in enumerate(model.blocks, start=1):
        conv = block.conv(x)
        act = torch.relu(block.bn(conv))
        out[f"conv{k}"] = conv.cpu().numpy().astype(np.float16)
        out[f"act{k}"] = act.cpu().numpy().astype(np.float16)
        if isinstance(block.se, torch.nn.Identity):
            x = block.pool(act)
            continue
        if block.placement == AFTER_POOL:
            attended = x = block.se(block.pool(act))
        else:
            attended = block.se(act)
            x = block.pool(attended)
        out[f"se{k}"] = attended.cpu().numpy().astype(np.float16)
        if getattr(block.se, "last_gates", None) is not None:
            out[f"sample_gates_{k}"] = block.se.last_gates.cpu().numpy().astype(np.float32)
        spatial = getattr(getattr(block.se, "spatial", block.se), "last_map", None)  # CBAM, spatial
        if spatial is not None:
            out[f"sample_spatial_{k}"] = spatial[:, 0].cpu().numpy().astype(np.float32)
    # --8<-- [end:feature_maps]
    if spatial_maps(model):  # spatial attention against Grad-CAM, on the sample of the gates
        gates, cams = {}, []
        for i in range(0, len(sample), batch_size):
            x = prep(x_all[sample[i : i + batch_size]])
            model(x)
            for k, m in spatial_maps(model).items():
                gates.setdefault(k, []).append(m.float().cpu().numpy())
            # Grad-CAM of the last block's BN output, before its attention: a map taken after the spatial
            # gates multiply it would contain them, and agree with them by construction.
            cams.append(grad_cam(model, x, y_all[sample[i : i + batch_size]].tolist(), layer=model.blocks[-1].bn))
        out.update(spatial_agreement({k: np.concatenate(v) for k, v in gates.items()}, np.concatenate(cams)))
    x = prep(x_all[idx])
    out["gradcam_pred"] = grad_cam(model, x, out["sample_preds"].tolist())
    out["gradcam_true"] = grad_cam(model, x, out["sample_labels"].tolist())
    # Where a wrong prediction looked, and where the true class's evidence lies in the same image.
    miss = misclassified_indices(y_all, pred, MISCLASSIFIED)
    out["misclassified_index"] = miss
    out["misclassified_images"] = arrays["x_test"][miss]
    out["misclassified_labels"] = y_all[miss]
    out["misclassified_preds"] = pred[miss]
    if len(miss):
        x = prep(x_all[miss])
        out["misclassified_gradcam_pred"] = grad_cam(model, x, pred[miss].tolist())
        out["misclassified_gradcam_true"] = grad_cam(model, x, y_all[miss].tolist())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.probe", description=__doc__.split("\n")[0])
    p.add_argument("--recipe", required=True)
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--weights", required=True, type=Path)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--sample-images", type=int, default=6)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    try:
        result = run_probe(load_recipe(args.recipe), args.model, args.weights, args.data, args.sample_images,
                           pick_device(args.device))
    except (DataError, ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    atomic.save_npz(args.out, **result)
    acc = 100.0 * (result["preds"] == result["labels"]).mean()
    print(f"probe {args.model}: test accuracy {acc:.2f}% on {len(result['labels'])} images -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
