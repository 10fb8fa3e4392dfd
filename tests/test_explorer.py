"""The Explorer's committed files: the ONNX graphs give PyTorch's numbers on the committed sample images.

onnxruntime (the engine ONNX Runtime Web compiles to WebAssembly) runs each exported graph on the
committed sample images, with attention on and off, and every output (logits, feature maps before and
after attention, gates) must match the PyTorch model loaded from the committed weights to 1e-4.

As trained (attention on) that is an absolute 1e-4. With attention off the network runs outside what
it was trained for and its logits reach several hundred, where one float32 step is 3e-5 to 6e-5: there
the bound is 1e-4 relative to the value wherever the value exceeds 1.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import ROOT
from se_attention import CLASSES, run_folder
from se_attention.augment import normalize
from se_attention.cnn import build_model
from se_attention.probe import load_weights
from se_attention.explorer import has_channel_gates

ort = pytest.importorskip("onnxruntime")

RUN = ROOT / "results" / "paper"
EXPLORER = RUN / "views" / "explorer"
TOLERANCE = 1e-4


def manifest(explorer: Path = EXPLORER) -> dict:
    return json.loads((explorer / "explorer.json").read_text(encoding="utf-8"))


def sample_images(explorer: Path = EXPLORER) -> np.ndarray:
    """The committed sample images, N x 32 x 32 x 3 uint8, in the manifest's order."""
    m = manifest(explorer)
    side, cols = m["side"], m["samples"]["columns"]
    grid = np.asarray(Image.open(explorer / m["samples"]["sprite"]).convert("RGB"))
    return np.stack([grid[(i // cols) * side:(i // cols + 1) * side, (i % cols) * side:(i % cols + 1) * side]
                     for i in range(len(m["samples"]["labels"]))])


def normalized(images: np.ndarray, m: dict) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    return normalize(x, m["normalize"]["mean"], m["normalize"]["std"])


def torch_model(run: Path, name: str, seed: int) -> nn.Module:
    """The trained model as PyTorch runs it, from its committed weights and recipe."""
    metrics = json.loads((run_folder(run, name, seed) / "metrics.json").read_text())
    model = build_model(name, **metrics["provenance"]["recipe"]["model"])
    load_weights(model, run_folder(run, name, seed) / "model.pt")
    return model.eval()


@torch.no_grad()
def torch_outputs(model: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Logits and, per block, the map entering and leaving its attention slot, and the SE gates."""
    out: dict[str, np.ndarray] = {}
    hooks = []
    for k, block in enumerate(model.blocks, start=1):
        def keep(module, inputs, output, k=k):
            out[f"pre{k}"], out[f"post{k}"] = inputs[0].numpy(), output.numpy()
            if has_channel_gates(module):
                out[f"gates{k}"] = module.last_gates.numpy()
        hooks.append(block.se.register_forward_hook(keep))
    out["logits"] = model(x).numpy()
    for h in hooks:
        h.remove()
    return out


@torch.no_grad()
def reference(model: nn.Module, x: torch.Tensor, attention: bool) -> dict[str, np.ndarray]:
    """What the exported graph should give: attention off is the model without its attention modules;
    channel gates (computed, not applied) are then the modules' on that network's maps."""
    if attention:
        return torch_outputs(model, x)
    plain = copy.deepcopy(model)
    for block in plain.blocks:
        block.se = nn.Identity()
    out = torch_outputs(plain, x)
    for k, block in enumerate(model.blocks, start=1):
        if has_channel_gates(block.se):
            out[f"gates{k}"] = block.se.gates(torch.from_numpy(out[f"pre{k}"])).numpy()
    return out


def onnx_outputs(path: Path, x: torch.Tensor, attention: float) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(None, {"image": x.numpy(), "attention": np.array([attention], np.float32)})
    return dict(zip(names, values))


def scaled_error(got: np.ndarray, ref: np.ndarray) -> float:
    """The largest |got - ref| / max(1, |ref|): absolute for values up to 1, relative above."""
    return float((np.abs(got - ref) / np.maximum(1.0, np.abs(ref))).max())


def parity_errors(run: Path, explorer: Path, measure=scaled_error) -> dict[tuple[str, float], dict[str, float]]:
    """The difference ONNX - PyTorch (``measure``) per model, attention setting and output."""
    m = manifest(explorer)
    x = normalized(sample_images(explorer), m)
    errors = {}
    for entry in m["models"]:
        for attention in (1.0, 0.0):
            ref = reference(torch_model(run, entry["name"], entry["seed"]), x, attention == 1.0)
            got = onnx_outputs(explorer / entry["file"], x, attention)
            assert set(got) == set(entry["outputs"])
            # A CNN's graph has no post maps (they are its pre maps) and no gates; attention changes nothing.
            errors[entry["name"], attention] = {k: measure(got[k], ref[k]) for k in got}
    return errors


def absolute_error(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(got - ref).max())


def test_onnx_graphs_match_pytorch_on_the_committed_sample_images(capsys):
    absolute = parity_errors(RUN, EXPLORER, absolute_error)
    scaled = parity_errors(RUN, EXPLORER)
    with capsys.disabled():
        print(f"\nexplorer parity, onnxruntime vs PyTorch on the {len(manifest()['samples']['labels'])} sample images, "
              "largest |difference| (absolute / scaled by max(1, |value|)): " + "; ".join(
                  f"{name} attention {'on' if a else 'off'} {max(per.values()):.1e} / {max(scaled[name, a].values()):.1e}"
                  for (name, a), per in absolute.items()))
    as_trained = {key: per for key, per in absolute.items() if key[1] == 1.0}
    assert max(e for per in as_trained.values() for e in per.values()) < TOLERANCE, as_trained
    assert max(e for per in scaled.values() for e in per.values()) < TOLERANCE, scaled


def test_the_manifest_states_what_the_results_say():
    m = manifest()
    assert m["classes"]["en"] == list(CLASSES) and len(m["classes"]["zh"]) == 10
    labels = np.array(m["samples"]["labels"])
    assert len(labels) == 100 and (np.bincount(labels, minlength=10) == 10).all()  # ten per class
    for entry in m["models"]:
        metrics = json.loads((run_folder(RUN, entry["name"], entry["seed"]) / "metrics.json").read_text())
        assert entry["test_accuracy"] == metrics["final_test_acc"] and entry["seed"] == 0
        assert (EXPLORER / entry["file"]).stat().st_size > 1_000_000
        # Grad-CAM was computed for the class this model predicts: PyTorch's prediction.
        logits = torch_outputs(torch_model(RUN, entry["name"], entry["seed"]), normalized(sample_images(), m))["logits"]
        assert logits.argmax(1).tolist() == entry["predictions"]
        assert Image.open(EXPLORER / entry["gradcam"]).size == Image.open(EXPLORER / m["samples"]["sprite"]).size


def test_the_samples_are_the_first_test_images_of_each_class():
    """Against the prepared test set, where it is present (it is a cache, not committed)."""
    data = ROOT / "data" / "paper" / "cifar10.npz"
    if not data.exists():
        pytest.skip(f"{data}: not prepared here")
    with np.load(data) as f:
        y = f["y_test"]
        x = f["x_test"]
    m = manifest()
    first = np.concatenate([np.flatnonzero(y == c)[:10] for c in range(10)])
    assert m["samples"]["index"] == first.tolist()
    assert (sample_images() == x[first]).all()  # PNG is lossless


@pytest.mark.slow
def test_export_of_a_fresh_model_matches_pytorch(tmp_path):
    """The exporter itself, on untrained models of every kind (about 10 s per model: torch.export)."""
    from se_attention.explorer import export_onnx

    torch.manual_seed(0)
    x = torch.randn(5, 3, 32, 32)
    # The lesson's two, and the zoo's kinds: SE after the pool, other channel gates (ECA), a whole module (CBAM).
    for name in ("cnn", "se", "se_after_pool", "eca", "cbam"):
        model = build_model(name).eval()
        names = export_onnx(model, tmp_path / f"{name}.onnx")
        assert names[:4] == ["logits", "pre1", "pre2", "pre3"]
        assert ("post3" in names) == (name != "cnn")
        assert ("gates3" in names) == (name in ("se", "se_after_pool", "eca"))
        for attention in (1.0, 0.0):
            ref = reference(model, x, attention == 1.0)
            got = onnx_outputs(tmp_path / f"{name}.onnx", x, attention)
            for k, v in got.items():
                assert scaled_error(v, ref[k]) < TOLERANCE, (name, attention, k)


def test_the_step_is_a_command_that_names_what_is_missing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "se_attention.explorer", "--help"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0 and "usage: python -m se_attention.explorer" in done.stdout
    done = subprocess.run([sys.executable, "-m", "se_attention.explorer", "--recipe", str(ROOT / "config" / "config.yaml"),
                           "--run-dir", str(RUN), "--models", "cnn", "--data", str(tmp_path / "none.npz"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and "none.npz" in done.stderr and "Traceback" not in done.stderr
