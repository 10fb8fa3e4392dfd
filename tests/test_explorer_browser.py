"""The Explorer page in Debian's Chromium, every request to another host refused (offline).

In both languages: the page loads ONNX Runtime Web and both models from the site itself, states each
model's seed and accuracy as results/<run>/runs/<model>/seed<k>/metrics.json says, and for three picked
test images shows the class probabilities and SE gates that PyTorch computes from the committed weights,
within 1e-3 (read from the page's data attributes, and the shown percentages agree). Switching attention
off gives PyTorch's model without SE blocks; an uploaded picture is run as the page shows it; a 390 px
phone never scrolls sideways. The page's transfer size and the time from a choice to the drawn result are
printed at the end.

The site: `SE_TEST_SITE=<folder>` (built with `SE_RUN=<run> mkdocs build --strict -d <folder>`) with
`SE_TEST_RUN=<run>` (paper by default) for the results it was built from; otherwise the committed paper
results are built into a temporary copy of the repository (about 15 s).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, copy_worktree
from test_explorer import manifest, normalized, reference, sample_images, torch_model
from test_site_browser import page, phone, site_url  # noqa: F401  (fixtures: the server and the browser)

pytestmark = pytest.mark.slow

PICKS = [0, 37, 94]  # three sample images: an airplane, a cat, a truck
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def run_dir() -> Path:
    return ROOT / "results" / (os.environ.get("SE_TEST_RUN", "paper") if os.environ.get("SE_TEST_SITE") else "paper")


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory):
    """SE_TEST_SITE, or the committed paper results built by plain MkDocs in a copy of the repository."""
    if os.environ.get("SE_TEST_SITE"):
        return Path(os.environ["SE_TEST_SITE"]).resolve()
    repo = copy_worktree(tmp_path_factory.mktemp("explorer_repo"))
    out = repo / "site" / "paper"
    env = {**os.environ, "SE_RUN": "paper", "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=repo, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def expected(run_dir):
    """PyTorch's probabilities and gates for every sample image, attention on and off."""
    explorer = run_dir / "views" / "explorer"
    m = manifest(explorer)
    x = normalized(sample_images(explorer), m)
    out = {}
    for entry in m["models"]:
        model = torch_model(run_dir, entry["name"], entry["seed"])
        for attention in (True, False):
            ref = reference(model, x, attention)
            out[entry["name"], attention] = {
                "probs": torch.softmax(torch.from_numpy(ref["logits"]).double(), 1).numpy(),
                "gates": [ref[f"gates{k}"] for k in range(1, 4) if f"gates{k}" in ref],
            }
    return m, out


@pytest.fixture(scope="module")
def measured(request):
    """Transfer sizes and inference times, printed as one table after the tests (no -s needed)."""
    rows = []
    yield rows
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if rows and terminal and capture:
        with capture.global_and_fixture_disabled():
            terminal.write_line("")
            terminal.write_line("explorer page, other hosts refused (bytes as served, uncompressed):")
            for row in rows:
                terminal.write_line(row)


def state(page) -> dict:
    return page.evaluate("({...document.querySelector('[data-explorer]').dataset})")


def wait_for(page, result: str, attention: str = "1") -> dict:
    page.wait_for_function(
        "([r, a]) => { const d = document.querySelector('[data-explorer]').dataset;"
        " return d.state === 'error' || (d.state === 'done' && d.result === r && d.attention === a); }",
        arg=[result, attention], timeout=30_000)
    found = state(page)
    assert found["state"] == "done", page.locator("[data-role=status]").inner_text()
    return found


def shown(page) -> tuple[dict[str, np.ndarray], list[np.ndarray], dict[str, list[str]]]:
    """What the page shows: probabilities per model, gates per SE block, the percentages as text."""
    probs = {e["dataset"]["model"]: np.array(json.loads(e["dataset"]["probs"])) for e in page.eval_on_selector_all(
        ".se-x-verdict", "els => els.map(e => ({dataset: {...e.dataset}}))")}
    gates = [np.array(json.loads(g)) for g in page.eval_on_selector_all(".se-x-block", "els => els.map(e => e.dataset.gates)")]
    rows = page.eval_on_selector_all(".se-x-prow:not(.se-x-prow--head)", "els => els.map(e => [...e.querySelectorAll("
                                     "'.se-x-ptext')].map(t => t.textContent))")
    text = {name: [row[i] for row in rows] for i, name in enumerate(probs)}
    return probs, gates, text


@pytest.mark.parametrize("lang", ["", "en/"])
def test_three_images_give_pytorchs_probabilities_and_gates_offline(page, site_url, expected, run_dir, measured, lang):
    m, ref = expected
    page.attempted_elsewhere.clear()
    page.goto(site_url + lang + "explorer/")
    wait_for(page, "sample:0")  # the page shows the first image once the models are loaded
    # Seed and accuracy as the run's metrics.json says.
    for entry in m["models"]:
        metrics = json.loads((run_dir / "runs" / entry["name"] / f"seed{entry['seed']}" / "metrics.json").read_text())
        item = page.locator(f'[data-role=models] li[data-model="{entry["name"]}"]')
        assert float(item.get_attribute("data-accuracy")) == metrics["final_test_acc"]
        assert f"{metrics['final_test_acc']:.2f}" in item.inner_text() and str(entry["seed"]) in item.inner_text()
    timings = []
    for i in PICKS:
        start = time.perf_counter()
        page.locator(f'.se-x-pick [data-index="{i}"]').click()
        found = wait_for(page, f"sample:{i}")
        timings.append((float(found["ms"]), 1000 * (time.perf_counter() - start)))
        probs, gates, text = shown(page)
        for name, p in probs.items():
            assert np.abs(p - ref[name, True]["probs"][i]).max() < TOLERANCE, (name, i)
            # The percentages a reader sees are the same numbers, rounded.
            assert np.abs(np.array([float(t.split()[0]) for t in text[name]]) - 100 * p).max() <= 0.05 + 1e-9
        se_gates = next(v["gates"] for (name, on), v in ref.items() if on and v["gates"])
        assert len(gates) == len(se_gates)
        for k, g in enumerate(gates):
            assert np.abs(g - se_gates[k][i]).max() < TOLERANCE, (i, k)
        assert page.locator(".se-x-gradcam .se-x-tile").count() == len(m["models"])
    assert page.attempted_elsewhere == [], sorted(set(page.attempted_elsewhere))
    sizes = page.evaluate("[performance.getEntriesByType('navigation')[0].encodedBodySize, "
                          "...performance.getEntriesByType('resource').map(r => r.encodedBodySize)]")
    largest = page.evaluate("performance.getEntriesByType('resource').sort((a, b) => b.encodedBodySize - "
                            "a.encodedBodySize).slice(0, 3).map(r => [r.name.split('/').pop(), r.encodedBodySize])")
    measured.append(f"{lang or 'zh/'}explorer/: {sum(sizes) / 2**20:.1f} MiB in {len(sizes)} files (largest: "
                    + ", ".join(f"{n} {s / 2**20:.1f} MiB" for n, s in largest) + "); choice to result, both models: "
                    + ", ".join(f"{page_ms:.0f} ms (page) / {wall:.0f} ms (test)" for page_ms, wall in timings))


def test_attention_off_runs_the_se_model_without_its_gates(page, site_url, expected):
    m, ref = expected
    page.goto(site_url + "en/explorer/")
    wait_for(page, "sample:0")
    page.locator('.se-x-pick [data-index="37"]').click()
    wait_for(page, "sample:37")
    page.locator("[data-role=attention]").uncheck()
    wait_for(page, "sample:37", attention="0")
    probs, gates, _ = shown(page)
    for entry in m["models"]:
        expect = ref[entry["name"], not entry["attention"]]["probs"][37]
        assert np.abs(probs[entry["name"]] - expect).max() < TOLERANCE, entry["name"]
    # Feature maps after "attention" are those before it, channel by channel.
    same = page.evaluate("""() => [...document.querySelectorAll('.se-x-block')].every(b => {
        const rows = [...b.querySelectorAll('.se-x-maps')].map(r => [...r.querySelectorAll('canvas')]
            .map(c => c.toDataURL()));
        return rows[0].join() === rows[2].join() && rows[1].join() === rows[3].join(); })""")
    assert same


def test_an_uploaded_picture_is_centre_cropped_to_what_the_model_sees(page, site_url, expected, run_dir):
    m, _ = expected
    page.goto(site_url + "explorer/")
    wait_for(page, "sample:0")
    # A wide picture: red left third, green middle, blue right third; the centre square is all green.
    picture = np.zeros((60, 180, 3), np.uint8)
    picture[:, :60, 0] = picture[:, 60:120, 1] = picture[:, 120:, 2] = 255
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    page.locator("[data-role=upload]").set_input_files({"name": "wide.png", "mimeType": "image/png",
                                                         "buffer": buffer.getvalue()})
    wait_for(page, "upload:wide.png")
    seen = np.array(page.evaluate("() => Array.from(document.querySelector('[data-role=seen]').getContext('2d')"
                                  ".getImageData(0, 0, 32, 32).data)"), np.uint8).reshape(32, 32, 4)[..., :3]
    assert (seen[..., 1] >= 250).all() and (seen[..., [0, 2]] <= 5).all()
    probs, _, _ = shown(page)
    x = normalized(seen[None], m)
    for entry in m["models"]:
        logits = reference(torch_model(run_dir, entry["name"], entry["seed"]), x, True)["logits"]
        p = torch.softmax(torch.from_numpy(logits).double(), 1).numpy()[0]
        assert np.abs(probs[entry["name"]] - p).max() < TOLERANCE
    assert page.locator(".se-x-gradcam .se-x-tile").count() == 0  # Grad-CAM is for the committed images only


@pytest.mark.parametrize("lang", ["", "en/"])
def test_the_explorer_fits_a_phone(phone, site_url, lang):
    phone.goto(site_url + lang + "explorer/")
    phone.wait_for_function("document.querySelector('[data-explorer]').dataset.state === 'done'", timeout=30_000)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    tile = phone.locator('.se-x-pick [data-index="0"]').bounding_box()
    assert tile["width"] >= 24  # a finger can still pick an image


@pytest.mark.parametrize("start, other", [("explorer/#inside", "en"), ("en/explorer/#inside", "zh")])
def test_switching_language_keeps_the_place_while_the_explorer_draws_below_it(page, site_url, start, other):
    """The results drawn after loading push the reader's heading down; the page follows it there."""
    page.goto(site_url + start)
    page.wait_for_function("document.querySelector('[data-explorer]').dataset.state === 'done'", timeout=30_000)
    page.locator(f'a[hreflang="{other}"]').first.evaluate("a => a.click()")
    page.wait_for_function("() => location.hash === '#inside'")
    page.wait_for_function("document.querySelector('[data-explorer]').dataset.state === 'done'", timeout=30_000)
    page.wait_for_timeout(300)  # the last resize of the drawn results
    top = page.evaluate("document.getElementById('inside').getBoundingClientRect().top")
    assert 0 <= top < 120, top  # under the header, not a screen or more away
