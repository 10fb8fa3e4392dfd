"""What the site's Explorer page runs in the reader's browser: ONNX graphs, sample images, Grad-CAM.

    python -m se_attention.explorer --recipe config/config.yaml --run-dir results/paper \
        --models cnn se --seed 0 --data data/paper/cifar10.npz --out results/paper/views/explorer

Writes into ``--out``:

* ``<model>.onnx``: one graph per model. Inputs ``image`` (N x 3 x 32 x 32, normalised as the recipe's
  ``normalize``) and ``attention`` (one float: 1 applies the attention modules as trained, 0 leaves
  them out). Outputs ``logits``; ``pre<k>``, each block's map as its attention module receives it (after
  BN+ReLU, and after the pool for a module placed there); for attention models also ``post<k>``, the
  map the module returns, and for channel gates (SE, ECA) ``gates<k>``, the gates the module computed
  (also when attention is 0, where they are not applied). A CNN's post is its pre.
* ``samples.png``: the first ``per_class`` test images of each class, one row per class (a sprite);
* ``gradcam_<model>.png``: the same grid, each image overlaid with its Grad-CAM for the predicted
  class (the probe's method: se_attention.probe.grad_cam);
* ``explorer.json``: what the page states and needs: models, seed, test accuracy (from metrics.json),
  class names in every language (from the catalogues), the normalisation, the sample labels.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from . import CLASSES, atomic, i18n, run_folder
from .attention import AFTER_POOL
from .augment import normalize
from .cnn import LessonCNN, build_model
from .config import load_recipe
from .data import DataError, load_npz
from .probe import grad_cam, load_weights
from .gating import scale

SIDE = 32  # CIFAR-10 images are 32 x 32


def has_channel_gates(module: nn.Module) -> bool:
    """SE and ECA: one gate per channel, computed by ``gates(x)``; the page draws them as bars."""
    return callable(getattr(module, "gates", None))


class ExplorerGraph(nn.Module):
    """The eval-mode network of se_attention.cnn, block by block, with every map the page draws as an output.

    Any attention module of the registry, at either place: channel gates (SE, ECA) are outputs and
    are applied as ``attention * g + (1 - attention)``; any other module (CBAM, spatial attention)
    is applied whole, ``attention * module(x) + (1 - attention) * x``. Both are exactly the module's
    result at 1 and exactly its input at 0.
    """

    def __init__(self, model: LessonCNN) -> None:
        super().__init__()
        self.model = model
        self.attention = [not isinstance(b.se, nn.Identity) for b in model.blocks]
        self.gated = [has_channel_gates(b.se) for b in model.blocks]

    def output_names(self) -> list[str]:
        k = range(1, len(self.attention) + 1)
        names = ["logits"] + [f"pre{i}" for i in k]
        if any(self.attention):
            names += [f"post{i}" for i in k] + [f"gates{i}" for i, g in zip(k, self.gated) if g]
        return names

    def forward(self, image: torch.Tensor, attention: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, pres, posts, gates = image, [], [], []
        for block in self.model.blocks:
            x = block.bn(block.conv(x))
            after_pool = block.placement == AFTER_POOL
            pre = torch.relu(block.pool(x) if after_pool else x)  # what the attention module receives
            if has_channel_gates(block.se):
                g = block.se.gates(pre)
                gates.append(g)
                # attention 1: g exactly (g * 1 + 0); attention 0: exactly 1 (g * 0 + 1).
                post = scale(pre, attention * g + (1 - attention))
            elif isinstance(block.se, nn.Identity):
                post = pre
            else:
                post = attention * block.se(pre) + (1 - attention) * pre
            pres.append(pre)
            posts.append(post)
            x = post if after_pool else block.pool(post)
        logits = self.model.fc2(torch.relu(self.model.fc1(torch.flatten(x, 1))))
        return (logits, *pres, *(posts + gates if any(self.attention) else []))


def load_model(name: str, recipe: dict, weights: Path) -> LessonCNN:
    model = build_model(name, **recipe["model"])
    load_weights(model, weights)
    return model.eval()


def export_onnx(model: LessonCNN, out: Path) -> list[str]:
    """One self-contained .onnx file (weights inside); returns its output names."""
    graph = ExplorerGraph(model).eval()
    names = graph.output_names()
    example = (torch.zeros(2, 3, SIDE, SIDE), torch.ones(1))
    tmp = out.with_name(f".{out.name}.part")
    with warnings.catch_warnings():
        # Attention modules keep their last gates for inspection, an attribute the exporter would like as a buffer.
        warnings.filterwarnings("ignore", message="The tensor attributes .*last_gates")
        torch.onnx.export(graph, example, str(tmp), input_names=["image", "attention"], output_names=names,
                          dynamic_shapes={"image": {0: torch.export.Dim("batch")}, "attention": None},
                          dynamo=True, external_data=False, verbose=False)
    strip_source_locations(tmp)
    tmp.replace(out)
    return names


def strip_source_locations(path: Path) -> None:
    """Drop what the exporter records about the Python that traced the graph (stack traces with
    this machine's file paths, node names of the source): the published model is the graph alone,
    and re-exporting from another checkout gives the same bytes."""
    import onnx

    model = onnx.load(str(path))
    graphs = [model.graph] + [f for f in model.functions]
    for graph in graphs:
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
    del model.graph.metadata_props[:]
    onnx.save(model, str(path))


def sample_indices(labels: np.ndarray, per_class: int) -> np.ndarray:
    """The first ``per_class`` test images of each class, class by class."""
    return np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(len(CLASSES))])


def sprite(images: np.ndarray, columns: int) -> Image.Image:
    """N x H x W x 3 uint8 -> one image, ``columns`` per row."""
    n, h, w, _ = images.shape
    rows = -(-n // columns)
    grid = np.zeros((rows * h, columns * w, 3), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = img
    return Image.fromarray(grid)


def overlay(images: np.ndarray, cams: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Images (N x H x W x 3 uint8) blended with their maps (N x H x W in [0, 1]) in matplotlib's jet."""
    from matplotlib import colormaps

    heat = colormaps["jet"](cams)[..., :3]
    return np.round(255 * ((1 - alpha) * images / 255.0 + alpha * heat)).astype(np.uint8)


def save_png(image: Image.Image, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.part")
    image.save(tmp, format="PNG", optimize=True)
    tmp.replace(path)


@torch.no_grad()
def build(recipe: dict, run_dir: Path, models: list[str], seed: int, data: Path, out: Path,
          per_class: int = 10) -> dict:
    arrays = load_npz(data)
    idx = sample_indices(arrays["y_test"], per_class)
    images, labels = arrays["x_test"][idx], arrays["y_test"][idx]
    mean, std = recipe["normalize"]["mean"], recipe["normalize"]["std"]
    x = normalize(torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255), mean, std)
    out.mkdir(parents=True, exist_ok=True)
    save_png(sprite(images, per_class), out / "samples.png")

    entries = []
    for name in models:
        folder = run_folder(run_dir, name, seed)
        model = load_model(name, recipe, folder / "model.pt")
        outputs = export_onnx(model, out / f"{name}.onnx")
        preds = model(x).argmax(1)
        cams = grad_cam(model, x, preds.tolist())
        save_png(sprite(overlay(images, cams), per_class), out / f"gradcam_{name}.png")
        metrics = json.loads((folder / "metrics.json").read_text())
        entries.append({
            "name": name,
            "seed": seed,
            "file": f"{name}.onnx",
            "gradcam": f"gradcam_{name}.png",
            "outputs": outputs,
            "attention": any(not isinstance(b.se, nn.Identity) for b in model.blocks),
            "gates": any(has_channel_gates(b.se) for b in model.blocks),
            "channels": [b.conv.out_channels for b in model.blocks],
            "test_accuracy": metrics["final_test_acc"],
            "test_images": metrics["test_images"],
            "epochs": metrics["epochs"],
            "parameters": metrics["parameters"],
            "predictions": preds.tolist(),
        })
    manifest = {
        "seed": seed,
        "normalize": {"mean": mean, "std": std},
        "side": SIDE,
        "classes": {lang: list(i18n.text(lang, "figures.classes")) for lang in i18n.languages()},
        "samples": {"sprite": "samples.png", "columns": per_class, "index": idx.tolist(),
                    "labels": labels.tolist()},
        "models": entries,
    }
    atomic.write_text(out / "explorer.json", json.dumps(manifest, ensure_ascii=False) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.explorer", description=__doc__.split("\n")[0])
    p.add_argument("--recipe", required=True, help="the recipe as JSON, or config YAML file(s), comma-separated")
    p.add_argument("--run-dir", required=True, type=Path, help="results/<run>, with runs/<model>/seed<k>/")
    p.add_argument("--models", required=True, nargs="+")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", required=True, type=Path, help="the prepared CIFAR-10 npz")
    p.add_argument("--per-class", type=int, default=10, help="sample test images per class")
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    try:
        manifest = build(load_recipe(args.recipe), args.run_dir, args.models, args.seed, args.data, args.out,
                         args.per_class)
    except (DataError, ValueError, RuntimeError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for m in manifest["models"]:
        print(f"explorer {m['name']} seed {m['seed']}: {args.out / m['file']} ({len(m['outputs'])} outputs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
