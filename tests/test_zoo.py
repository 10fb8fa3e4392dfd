"""The zoo step: Holm's correction, and the tables and figures from real (tiny) runs of several modules."""

import copy
import json

import numpy as np
import pytest
import torch

from se_attention import outputs, zoo
from se_attention.probe import run_probe
from se_attention.train import train

CPU = torch.device("cpu")


def test_holm_adjusts_the_sorted_p_values_and_keeps_them_monotone():
    adjusted = zoo.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": None})
    assert adjusted == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06, "d": None})
    assert zoo.holm({"a": 0.6, "b": 0.7}) == {"a": 1.0, "b": 1.0}  # capped at 1


def _row(mean, lo, hi, p_holm):
    return {"gap": {"n": 3, "mean": mean, "ci": [lo, hi]}, "p_holm": p_holm}


@pytest.mark.parametrize("row, words", [
    (_row(+1.06, +0.03, +2.09, 0.19), "ahead of the CNN on its own interval, not after the correction"),
    (_row(-1.06, -2.09, -0.03, 0.19), "behind the CNN on its own interval, not after the correction"),
    (_row(+0.37, -1.08, +1.83, 1.0), "no detectable difference from the CNN at 3 seeds"),
    (_row(+1.50, +1.00, +2.00, 0.01), "better than the CNN at 3 seeds"),
    (_row(-1.50, -2.00, -1.00, 0.01), "worse than the CNN at 3 seeds"),
])
def test_verdict_never_contradicts_the_interval_it_prints(row, words):
    # An interval that excludes 0 beside "no detectable difference" reads as a contradiction: the
    # verdict says that the interval is the module's own and the correction for 4 modules undoes it.
    text = zoo.verdict("cbam", row, "en", compared=4)
    assert words in text
    if "own interval" in text:
        assert "with 4 modules compared" in text and "Holm-corrected" in text
        assert "同时比较了 4 个模块" in zoo.verdict("cbam", row, "zh", compared=4)


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    """Two seeds of the CNN, SE and CBAM, one epoch each on synthetic data, with the seed-0 probes."""
    from conftest import ROOT, write_prepared
    from se_attention.config import load_config, recipe

    base = tmp_path_factory.mktemp("zoo")
    data = write_prepared(base / "cifar10.npz")
    r = copy.deepcopy(recipe(load_config(ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml")))
    r["train"]["epochs"] = 1
    for model in ("cnn", "se", "cbam"):
        for seed in (0, 1):
            folder = base / "runs" / model / f"seed{seed}"
            train(r, model, seed, data, folder, CPU, {"source": "synthetic"}, progress=False)
        if model != "cnn":
            np.savez(base / "runs" / model / "seed0" / "probe.npz",
                     **run_probe(r, model, base / "runs" / model / "seed0" / "model.pt", data, 4, CPU))
    return base


def test_zoo_writes_every_table_and_figure_in_both_languages(zoo_run):
    written = zoo.write_all(zoo_run, ["cnn", "se", "cbam"], [0, 1], 0, ["zh", "en"], dpi=40)
    names = {p.relative_to(zoo_run).as_posix() for p in written}
    expected = {"tables/zoo.json"} | {f"tables/{lang}/{n}.md" for lang in ("zh", "en") for n in outputs.ZOO_TABLES} \
        | {f"views/figures/{lang}/{n}.png" for lang in ("zh", "en") for n in outputs.ZOO_FIGURES}
    assert names == expected
    result = json.loads((zoo_run / "tables" / "zoo.json").read_text())
    cbam = result["modules"]["cbam"]
    added = sum(2 * c * (c // 16) + 2 * 7 * 7 for c in (32, 64, 128))  # the channel MLP and the 7 x 7 conv
    assert cbam["parameters_added"] == added
    assert cbam["gap"]["n"] == 2 and len(cbam["gate_class_specificity"]) == 3
    assert set(result["modules"]) == {"cnn", "se", "cbam"} and "p_holm" in cbam
    en = (zoo_run / "tables" / "en" / "zoo.md").read_text()
    assert f"| CBAM | {added:,} |" in en and "Holm-corrected for the 2 modules" in en
    assert "these differ" not in en  # all runs finished on this machine: the seconds compare
    verdicts = (zoo_run / "tables" / "zh" / "zoo_verdicts.md").read_text().splitlines()
    assert len(verdicts) == 2 and all("个种子" in v for v in verdicts)
    # CBAM's probe keeps its spatial gates, which the spatial figure draws beside Grad-CAM.
    probe = np.load(zoo_run / "runs" / "cbam" / "seed0" / "probe.npz")
    assert probe["sample_spatial_3"].shape == (4, 8, 8) and ((probe["sample_spatial_3"] > 0) & (probe["sample_spatial_3"] < 1)).all()
    # ... and measures, on the whole gate sample, how far the gates follow Grad-CAM, block by block.
    agreement = cbam["spatial_agreement"]
    assert [b["block"] for b in agreement] == [1, 2, 3] and agreement[0]["sample"] == len(probe["sample_of_gates"])
    assert all(2 <= b["n"] <= b["sample"] for b in agreement)  # images with a flat map have no ranks
    assert "se" in result["modules"] and "spatial_agreement" not in result["modules"]["se"]
    assert "another image" in (zoo_run / "tables" / "en" / "zoo_spatial_agreement.md").read_text()


def test_zoo_without_the_cnn_is_refused_by_name(zoo_run):
    with pytest.raises(ValueError, match="expected cnn and another model, found \\['se'\\]"):
        zoo.write_all(zoo_run, ["se"], [0], 0, ["en"], dpi=40)


def test_zoo_table_says_when_its_seconds_come_from_different_machines(zoo_run):
    result = json.loads((zoo_run / "tables" / "zoo.json").read_text())
    mixed = copy.deepcopy(result)
    here = result["modules"]["cnn"]["devices"]
    assert here and all(r["devices"] == here for r in result["modules"].values())
    mixed["modules"]["cbam"]["devices"] = ["AMD EPYC 7B13 (x86_64, torch AVX2), 1 thread"]
    en = zoo.zoo_markdown(mixed, "en")
    assert "these differ" in en and "CBAM: AMD EPYC 7B13 (x86&#95;64, torch AVX2), 1 thread" in en
    assert "CNN, SE: " in en and "Compare" in en
    assert "机器并不相同" in zoo.zoo_markdown(mixed, "zh")
    assert "differ" not in zoo.zoo_markdown(result, "en")


def test_gate_range_gives_each_blocks_quantiles_and_says_when_gates_stay_below_a_half():
    rng = np.random.default_rng(0)
    low = rng.uniform(0.05, 0.45, (1000, 32)).astype(np.float16)  # every gate below one half
    wide = rng.uniform(0.0, 1.0, (1000, 32)).astype(np.float16)
    result = {"modules": {"cnn": {}, "se": {"gate_quantiles": [zoo.gate_quantiles(wide)] * 3},
                          "eca": {"gate_quantiles": [zoo.gate_quantiles(low)] * 3}}}
    lo, mid, hi = result["modules"]["eca"]["gate_quantiles"][0]
    assert lo < mid < hi < 0.45 and abs(mid - 0.25) < 0.02
    en = zoo.gate_range_markdown(result, "en")
    assert f"| ECA | {mid:.2f} ({lo:.2f}–{hi:.2f}) |" in en and "| SE |" in en
    assert "**ECA**: 99 % of its gates lie below" in en and "**SE**" not in en.split("\n\n")[-1]
    assert "**ECA**：每个块中 99% 的门控值都低于" in zoo.gate_range_markdown(result, "zh")
    assert "No model" in zoo.gate_range_markdown({"modules": {"cnn": {}}}, "en")


def test_coverage_names_the_registry_modules_not_yet_trained_for_the_page():
    en = zoo.coverage_markdown(["cnn", "se", "eca"], "en")
    trained, pending = en.split("Written and tested")
    assert "SE, ECA" in trained and "CNN" not in trained
    assert all(name in pending for name in ("SE after the pool", "CBAM", "Spatial attention"))
    assert "SE" not in pending.replace("SE after", "") and "ECA" not in pending
    assert "CBAM、空间注意力" in zoo.coverage_markdown(["cnn", "se", "eca"], "zh")
    everything = ["cnn", *zoo.REGISTRY]
    assert zoo.coverage_markdown(everything, "en").startswith("Every module of the registry")
    assert "尚未" not in zoo.coverage_markdown(everything, "zh")


def test_spatial_agreement_tells_following_the_object_from_favouring_the_centre():
    from se_attention.probe import spatial_agreement

    rng = np.random.default_rng(0)
    n = 200
    yy, xx = np.mgrid[:32, :32]
    centre = np.exp(-((yy - 15.5) ** 2 + (xx - 15.5) ** 2) / 120.0)
    # Each image's object at its own place: Grad-CAM is a blob there, on top of the centre.
    spots = rng.integers(4, 28, size=(n, 2))
    blobs = np.stack([np.exp(-((yy - a) ** 2 + (xx - b) ** 2) / 40.0) for a, b in spots])
    cams = (blobs + 0.3 * centre).astype(np.float32)
    pool = lambda m: torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(m)[:, None], (8, 8))[:, 0].numpy()
    following = spatial_agreement({3: pool(blobs.astype(np.float32))}, cams)
    centred = spatial_agreement({3: pool(np.repeat(centre[None], n, 0).astype(np.float32))}, cams)
    own, other = following["spatial_gradcam_rho_3"], following["spatial_gradcam_rho_other_3"]
    assert own.shape == (n,) and own.mean() > 0.8 and own.mean() - other.mean() > 0.3
    # Gates that only favour the centre agree with any image's map as much as with the image's own.
    own, other = centred["spatial_gradcam_rho_3"], centred["spatial_gradcam_rho_other_3"]
    assert own.mean() > 0.3 and abs(own.mean() - other.mean()) < 0.05


def _agreement(diff, lo, hi):
    return {"modules": {"cnn": {}, "cbam": {"spatial_agreement": [
        {"block": 3, "n": 1000, "rho": 0.12 + diff, "rho_other": 0.12, "difference": diff, "ci": [lo, hi],
         "p_value": 0.01}]}}}


def test_spatial_agreement_verdict_needs_a_difference_that_matters_not_only_a_narrow_interval():
    small = zoo.spatial_agreement_markdown(_agreement(0.016, 0.002, 0.030), 0, "en").replace("\xa0", " ")
    assert "| Model | Block 3 |" in small  # the block's own number, not its column's
    assert "do not follow the object" in small and "+0.02 [+0.00, +0.03]" in small
    assert "0.14 vs 0.12" in small
    large = zoo.spatial_agreement_markdown(_agreement(0.3, 0.25, 0.35), 0, "en")
    assert "follow the object that drove the decision in block 3" in large
    assert "并不跟随" in zoo.spatial_agreement_markdown(_agreement(0.016, 0.002, 0.030), 0, "zh")
    unclear = zoo.spatial_agreement_markdown(_agreement(0.25, -0.05, 0.55), 0, "en").replace("\xa0", " ")
    assert "not settled by this sample" in unclear and "+0.25 [-0.05, +0.55]" in unclear
    assert "do not follow" not in unclear and "follow the object that drove" not in unclear
    assert "这个样本还不能下结论" in zoo.spatial_agreement_markdown(_agreement(0.25, -0.05, 0.55), 0, "zh")
    assert "no model of this run has spatial attention" in zoo.spatial_agreement_markdown(
        {"modules": {"cnn": {}, "se": {}}}, 0, "en").lower()


def test_spatial_agreement_has_no_null_for_a_single_image_and_the_zoo_skips_such_a_block():
    from se_attention.probe import spatial_agreement

    one = spatial_agreement({3: np.random.default_rng(0).random((1, 8, 8), dtype=np.float32)},
                            np.random.default_rng(1).random((1, 32, 32), dtype=np.float32))
    assert np.isnan(one["spatial_gradcam_rho_other_3"]).all()  # never the image with itself
    assert zoo.spatial_agreement(one) == []
