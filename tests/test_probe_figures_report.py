import json

import numpy as np
import pytest
import torch

from PIL import Image

from se_attention import figures, outputs, report, tables
from se_attention import stats as st
from se_attention.cnn import build_model
from se_attention.data import load_npz
from se_attention.fonts import FontError, use_cjk_font
from se_attention.probe import run_probe
from se_attention.train import train

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A real (two-epoch) run of both models on synthetic data, laid out as the workflow does."""
    import copy

    from conftest import ROOT, write_prepared
    from se_attention.config import load_config, recipe

    base = tmp_path_factory.mktemp("run")
    data = write_prepared(base / "cifar10.npz")
    r = recipe(load_config(ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml"))
    r = copy.deepcopy(r)
    r["train"]["epochs"] = 2
    for model in ("cnn", "se"):
        folder = base / "runs" / model / "seed0"
        train(r, model, 0, data, folder, CPU, {"source": "synthetic"}, progress=False)
        np.savez(folder / "probe.npz", **run_probe(r, model, folder / "model.pt", data, 4, CPU))
    (base / "data").mkdir()
    (base / "data" / "provenance.json").write_text(json.dumps({
        "source": "synthetic.tar.gz", "layout": "image-folder", "source_md5": "0" * 32, "jpeg_reencoded": True,
        "arrays_sha256": "f" * 64, "totals": {"train": 200, "test": 100},
        "counts": {"train": {"cat": 20}, "test": {"cat": 10}}}))
    return base, r, data


def test_class_mean_gates_match_a_direct_computation(tiny_run):
    base, r, data = tiny_run
    probe = np.load(base / "runs" / "se" / "seed0" / "probe.npz")
    model = build_model("se", **r["model"])
    model.load_state_dict(torch.load(base / "runs" / "se" / "seed0" / "model.pt", weights_only=True))
    model.eval()
    arrays = load_npz(data)
    mean = torch.tensor(r["normalize"]["mean"])[:, None, None]
    std = torch.tensor(r["normalize"]["std"])[:, None, None]
    cls = 3
    idx = np.flatnonzero(arrays["y_test"] == cls)
    x = (torch.from_numpy(arrays["x_test"][idx]).permute(0, 3, 1, 2).float() / 255 - mean) / std
    # By hand, block 1: conv -> BN -> ReLU, then the SE gate averaged over the class's images.
    with torch.no_grad():
        b = model.blocks[0]
        act = torch.relu(b.bn(b.conv(x)))
        gates = torch.sigmoid(b.se.fc2(torch.relu(b.se.fc1(act.mean((2, 3))))))
    np.testing.assert_allclose(probe["gates_class_mean_1"][cls], gates.mean(0).numpy(), atol=1e-5)
    assert probe["confusion"].sum() == 100
    assert (np.diag(probe["confusion"]).sum() / 100) == pytest.approx((probe["preds"] == probe["labels"]).mean())


def test_probe_feature_maps_are_consistent(tiny_run):
    base, _, _ = tiny_run
    p = np.load(base / "runs" / "se" / "seed0" / "probe.npz")
    assert p["conv1"].shape == (4, 32, 32, 32) and p["conv3"].shape == (4, 128, 8, 8)
    scaled = p["act2"].astype(np.float32) * p["sample_gates_2"][:, :, None, None]
    np.testing.assert_allclose(p["se2"].astype(np.float32), scaled, rtol=1e-2, atol=1e-2)
    assert "se1" not in np.load(base / "runs" / "cnn" / "seed0" / "probe.npz").files


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_all_figures_draw_in_both_languages(tiny_run, lang):
    base, _, _ = tiny_run
    written = figures.draw_all(base, ["cnn", "se"], 0, lang, channels=4, dpi=40)
    # Exactly what the workflow declares (rules/figures.smk reads the same list).
    assert sorted(p.name for p in written) == sorted(f"{n}.png" for n in outputs.figure_names(["cnn", "se"]))
    for p in written:
        with Image.open(p) as im:
            darkest, lightest = im.convert("L").getextrema()
            assert im.width > 50 and im.height > 50 and lightest - darkest > 100, p  # drawn, not blank


def test_chinese_labels_use_a_cjk_font():
    name = use_cjk_font()
    from matplotlib import font_manager

    path = font_manager.findfont(font_manager.FontProperties(family=name), fallback_to_default=False)
    from fontTools.ttLib import TTFont

    cmap = TTFont(path, fontNumber=0).getBestCmap()
    assert all(ord(ch) in cmap for ch in "飞机准确率损失通道")


def test_missing_cjk_font_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("SE_ATTENTION_CJK_FONT", "")
    with pytest.raises(FontError, match="pip install mplfonts"):
        use_cjk_font()


def test_channel_attention_needs_an_se_probe():
    with pytest.raises(ValueError, match="needs an SE model"):
        figures.plot_channel_attention({"labels": np.zeros(3)}, "en")


def test_reports_read_only_the_metrics_files(tiny_run):
    base, _, _ = tiny_run
    written = report.write_reports(base, ["cnn", "se"], [0], ["zh", "en"])
    metrics = {m: json.loads((base / "runs" / m / "seed0" / "metrics.json").read_text()) for m in ("cnn", "se")}
    en = (base / "tables" / "en" / "metrics.md").read_text()
    assert f"{metrics['se']['final_test_acc']:.2f}" in en and f"{metrics['cnn']['parameters']:,}" in en
    assert "Trained for the recipe's full 2 epochs." in en
    assert "JPEG re-encoding" in (base / "tables" / "en" / "data.md").read_text()
    zh = (base / "tables" / "zh" / "architecture.md").read_text()
    assert "卷积块 1：SE 模块（32 → 2 → 32）" in zh and "**1,150,602**" in zh
    summary = json.loads((base / "tables" / "summary.json").read_text())
    assert summary["models"]["se"]["final_test_acc"] == [metrics["se"]["final_test_acc"]]
    # Exactly what the workflow declares (rules/figures.smk reads the same list), plus summary.json.
    assert sorted(p.relative_to(base / "tables").as_posix() for p in written) == sorted(
        [f"{lang}/{n}.md" for lang in ("zh", "en") for n in outputs.table_names(["cnn", "se"])] + ["summary.json"])
    assert "No benchmark has been recorded" in (base / "tables" / "en" / "performance.md").read_text()
    assert "add 2,688 parameters to the CNN's 1,147,914" in (base / "tables" / "en" / "fact_se_params.md").read_text()
    assert "ReduceLROnPlateau" in (base / "tables" / "en" / "recipe.md").read_text()


def test_mean_std_formatting():
    assert tables.mean_std([70.0]) == "70.00"
    assert tables.mean_std([70.0, 72.0]) == "71.00\u00a0±\u00a01.41"  # never broken in a table cell




def test_gradcam_maps_have_input_size_and_find_a_planted_patch():
    """A CNN wired so that class 0 counts bright pixels: Grad-CAM must point at the bright patch."""
    from se_attention.probe import grad_cam

    torch.manual_seed(0)
    model = build_model("se").eval()
    with torch.no_grad():
        for block in model.blocks:
            block.conv.weight.fill_(1.0 / block.conv.weight[0].numel())
            block.conv.bias.zero_()
        model.fc1.weight.fill_(1e-3)
        model.fc1.bias.zero_()
        model.fc2.weight.zero_()
        model.fc2.weight[0].fill_(1.0)
    x = torch.full((2, 3, 32, 32), -1.0)
    x[0, :, 4:12, 20:28] = 3.0   # top right
    x[1, :, 22:30, 2:10] = 3.0   # bottom left
    maps = grad_cam(model, x, [0, 0])
    assert maps.shape == (2, 32, 32)
    for cam, (rows, cols) in zip(maps, [(slice(4, 12), slice(20, 28)), (slice(22, 30), slice(2, 10))]):
        inside = cam[rows, cols].mean()
        outside = (cam.sum() - cam[rows, cols].sum()) / (cam.size - 64)
        assert inside > 3 * outside, (inside, outside)


@pytest.mark.parametrize("per_class", [5, 100])
def test_class_share_separates_class_driven_from_random_gates(per_class):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), per_class)
    random_gates = rng.uniform(0, 1, (len(labels), 16))
    class_gates = labels[:, None] / 10 + rng.normal(0, 0.01, (len(labels), 16))
    assert st.class_share(random_gates, labels) < 0.05  # no inflation, even with 5 images per class
    assert st.class_share(class_gates, labels) > 0.95


def test_specificity_sentence_says_what_the_data_says():
    assert "rises with depth" in tables.specificity_markdown([0.1, 0.2, 0.5], 0, 1000, "en")
    assert "does not rise steadily" in tables.specificity_markdown([0.3, 0.2, 0.5], 0, 1000, "en")


def test_per_class_accuracy_from_confusion():
    cm = np.array([[8, 2], [1, 9]])
    np.testing.assert_allclose(figures.per_class_accuracy(np.pad(cm, ((0, 8), (0, 8))))[:2], [80.0, 90.0])


def test_faithfulness_with_the_lessons_runs_from_an_earlier_record_names_it_and_the_engine_before(tmp_path):
    (tmp_path / "performance").mkdir()
    faith = {"epochs": 5, "cpu_model": "test CPU", "lesson_runs_from": "faithfulness_previous_engine.json",
             "engine": "fused CPU kernels",
             "runs": [{"pipeline": p, "model": m, "seed": s, "test_acc": [50.0 + s] * 4 + [60.0 + s + (p == "ours")]}
                      for p in ("lesson", "ours") for m in ("cnn", "se") for s in (0, 1, 2)]}
    (tmp_path / "performance" / "faithfulness.json").write_text(json.dumps(faith))
    en = tables.performance_markdown(tmp_path, "en")
    assert "| CNN | ours (fused kernels) | 51.00, 51.00, 51.00, 51.00, 62.00 |" in en.replace("\xa0", " ")
    assert "ours minus the lesson's" in en and "CNN +1.00 ± 0.82" in en
    source = tables.literal("faithfulness_previous_engine.json")  # in prose, escaped against Markdown's emphasis
    assert f"taken from {source} as recorded there" in en
    assert "For comparison" not in en  # the earlier record is not there
    lesson = [r for r in faith["runs"] if r["pipeline"] == "lesson"]
    before = {"epochs": 5, "runs": lesson + [{**r, "pipeline": "ours", "test_acc": [62.0 + r["seed"]]} for r in lesson]}
    (tmp_path / "performance" / "faithfulness_previous_engine.json").write_text(json.dumps(before))
    en = tables.performance_markdown(tmp_path, "en")
    assert "For comparison, the engine before the fused kernels, from its runs of the same seeds in " \
           f"{source}: it minus the lesson's CNN +2.00 ± 0.82; CNN + SE +2.00 ± 0.82 points." in en
    assert "作为对照" in tables.performance_markdown(tmp_path, "zh")
    (tmp_path / "performance" / "faithfulness.json").write_text(json.dumps({**faith, "lesson_runs_from": "../x.json"}))
    with pytest.raises(ValueError, match=r"faithfulness.json: expected lesson_runs_from to name a JSON file beside "
                                         r"it, found '../x.json'"):
        tables.performance_markdown(tmp_path, "en")
    assert "--lesson-runs results/paper/performance/faithfulness_previous_engine.json`" in en  # a code span: no escapes
    (tmp_path / "performance" / "faithfulness.json").write_text(json.dumps({**faith, "lesson_runs_from": None}))
    both = tables.performance_markdown(tmp_path, "en")
    assert "Both pipelines trained 5 epochs" in both and "None" not in both and "taken from" not in both


def test_gpu_table_reads_its_own_record_explains_the_phases_and_refuses_a_cpu_record(tmp_path):
    assert "has not been timed on a GPU" in tables.gpu_markdown(tmp_path, "en")
    assert "还没有在 GPU 上为我们的引擎计时" in tables.gpu_markdown(tmp_path, "zh")
    spread = {"median": 6.0, "q1": 5.5, "q3": 6.5, "relative_spread": 0.16, "rounds": 20}
    lesson = {"data": 47.0, "forward": 2.0, "backward": 2.0, "optimizer": 1.0}
    ours = {"data": 5.0, "forward": 1.5, "backward": 1.5, "optimizer": 1.0}
    record = {"threads": 1, "steps": 400, "sgemm_gflops": 50000.0, "data": "random images", "device": "Some GPU",
              "device_type": "cuda", "cpu_model": "host CPU", "baseline": "lesson", "candidate": "ours",
              "speedup": 6.0, "trustworthy": False, "se_cnn_step_ratio": {"median": 1.7, "q1": 1.6, "q3": 1.8},
              "models": {m: {"lesson": {"images_per_second": 1200.0, "phases_ms": lesson, "peak_gpu_mb": 170},
                             "ours": {"images_per_second": 7000.0, "phases_ms": ours, "peak_gpu_mb": 150},
                             "ratio": 6.0, "ratio_spread": spread, "roof_images_per_second": 1_600_000.0}
                         for m in ("cnn", "se")}}
    (tmp_path / "performance").mkdir()
    (tmp_path / "performance" / "gpu_speed.json").write_text(json.dumps(record))
    en = tables.gpu_markdown(tmp_path, "en")
    assert "| CNN | ours, before the fused kernels | 7000 | 5.0 / 1.5 / 1.5 / 1.0 | 150 |" in en
    # A record without an engine is of the engine before the kernels, which made its batches on the GPU.
    assert "spends 47.0 of its 52.0 ms per CNN step" in en
    assert "ours (this record is of the engine before the fused kernels, which made it module by module on the GPU) " \
           "made it in 5.0 ms" in en
    (tmp_path / "performance" / "gpu_speed.json").write_text(json.dumps({**record, "engine": "fused CPU kernels"}))
    assert "ours makes it with its CPU kernel and sends it without waiting in 5.0 ms" in tables.gpu_markdown(tmp_path, "en")
    assert "用它的 CPU 内核制作批次" in tables.gpu_markdown(tmp_path, "zh")
    (tmp_path / "performance" / "gpu_speed.json").write_text(json.dumps(record))
    # 64 images in 4 ms is 16,000 images/s: 1 % of a roof of 1.6 M images/s.
    assert "take 4.0 ms, a rate of about 1.0 %" in en and "an SE step takes 1.70× a CNN step" in en
    # Rough rounds are said once, in the speed-up's own words.
    assert en.count("spread by more than 10 %") == 1 and "Some GPU" in en and "host CPU" in en
    assert "GPU 峰值显存" in tables.gpu_markdown(tmp_path, "zh")
    (tmp_path / "performance" / "gpu_speed.json").write_text(json.dumps({**record, "device_type": "cpu"}))
    with pytest.raises(ValueError, match=r"gpu_speed.json: expected a GPU record \(device_type cuda\)"):
        tables.gpu_markdown(tmp_path, "en")


def test_performance_table_reads_the_benchmark_record(tmp_path):
    phases = {"data": 1.0, "forward": 2.0, "backward": 3.0, "optimizer": 0.5}
    record = {"threads": 2, "steps": 10, "sgemm_gflops": 100.0, "data": "CIFAR-10", "device": "test CPU",
              "speedup": 2.5, "models": {m: {"lesson": {"images_per_second": 400.0, "phases_ms": phases, "peak_rss_mb": 900},
                                              "ours": {"images_per_second": 1000.0 + i, "phases_ms": phases,
                                                       "peak_rss_mb": 800},
                                              "ratio": 2.5, "roof_images_per_second": 2000.0}
                                         for i, m in enumerate(("cnn", "se"))}}
    (tmp_path / "performance").mkdir()
    (tmp_path / "performance" / "speed.json").write_text(json.dumps(record))
    en = tables.performance_markdown(tmp_path, "en")
    # A record without an engine is of our engine before the fused kernels, and is called so.
    assert "| CNN + SE | ours, before the fused kernels | 1001 | 50% | 800 | 1.0 / 2.0 / 3.0 / 0.5 |" in en
    assert "**Speed-up: 2.50×**" in en and "No faithfulness run has been recorded" in en
    (tmp_path / "performance" / "speed.json").write_text(json.dumps({**record, "engine": "fused CPU kernels"}))
    now = tables.performance_markdown(tmp_path, "en")
    assert "| CNN + SE | ours (fused kernels) | 1001 |" in now and "CNN + SE · ours (fused kernels)" in now  # table, chart
    assert "本项目（融合内核）" in tables.performance_markdown(tmp_path, "zh")
    # Rounds that disagree: no bold headline, a rounded figure that says why it is rough.
    (tmp_path / "performance" / "speed.json").write_text(json.dumps({**record, "trustworthy": False}))
    rough = tables.performance_markdown(tmp_path, "en")
    assert "**Speed-up" not in rough and "Speed-up: about 2.5× (the smaller of the two models' ratios; a rough" in rough
    assert "约 2.5×" in tables.performance_markdown(tmp_path, "zh")


def _write_faithfulness(run_dir, finals: dict, epochs: int = 2) -> None:
    runs = [{"pipeline": p, "model": m, "seed": seed, "test_acc": [50.0, acc]}
            for (m, p), accs in finals.items() for seed, acc in enumerate(accs)]
    (run_dir / "performance").mkdir(exist_ok=True)
    (run_dir / "performance" / "faithfulness.json").write_text(json.dumps({"epochs": epochs, "runs": runs,
                                                                           "engine": "fused CPU kernels"}))


def test_faithfulness_with_one_seed_gives_the_difference_and_says_it_cannot_judge_it(tmp_path):
    _write_faithfulness(tmp_path, {("cnn", "lesson"): [60.0], ("cnn", "ours"): [61.5],
                                   ("se", "lesson"): [62.0], ("se", "ours"): [61.25]})
    en = tables.performance_markdown(tmp_path, "en")
    assert "ours minus the lesson's, as a difference of means ± its standard error: CNN +1.50; CNN + SE -0.75 points" in en
    assert "no spread to judge by" in en
    assert "CNN +1.50；CNN + SE -0.75" in tables.performance_markdown(tmp_path, "zh")


def test_faithfulness_over_seeds_gives_mean_std_and_judges_the_difference_by_its_standard_error(tmp_path):
    # CNN: means 61 vs 60, stdev 1 each, standard error sqrt(2/3) = 0.82: within 2 SE.
    # SE: means 65 vs 60, stdev 0.5 each: SE 0.41, a difference of 5 is far outside.
    _write_faithfulness(tmp_path, {("cnn", "lesson"): [59.0, 60.0, 61.0], ("cnn", "ours"): [60.0, 61.0, 62.0],
                                   ("se", "lesson"): [59.5, 60.0, 60.5], ("se", "ours"): [64.5, 65.0, 65.5]})
    en = tables.performance_markdown(tmp_path, "en")
    assert "| CNN | ours (fused kernels) | 50.00, 61.00 | 60.00 (0), 61.00 (1), 62.00 (2) | 61.00\u00a0±\u00a01.00 |" in en
    assert "CNN +1.00 ± 0.82; CNN + SE +5.00 ± 0.41 points" in en
    assert "with each of the seeds 0, 1, 2" in en and "--seeds 0 1 2" in en
    assert "CNN + SE: the difference exceeds twice its standard error" in en
    _write_faithfulness(tmp_path, {("cnn", "lesson"): [59.0, 60.0, 61.0], ("cnn", "ours"): [60.0, 61.0, 62.0]})
    assert "Every difference is within twice its standard error: at 3 seeds" in tables.performance_markdown(tmp_path, "en")


def test_bf16_section_says_how_to_measure_until_measured_then_pairs_runs_by_seed(tmp_path):
    assert "has not been run" in tables.bf16_markdown(tmp_path, "en")
    assert "还没有做 bf16 对比" in tables.bf16_markdown(tmp_path, "zh")
    # CNN: bf16 - fp32 per seed -0.5, -0.3, -0.1: mean -0.30, SE 0.2/sqrt(3) = 0.115: apart.
    # SE: +1, -1, 0: mean 0, within its standard error.
    finals = {("cnn", "ours"): [60.0, 61.0, 62.0], ("cnn", "ours-bf16"): [59.5, 60.7, 61.9],
              ("se", "ours"): [60.0, 61.0, 62.0], ("se", "ours-bf16"): [61.0, 60.0, 62.0]}
    runs = [{"pipeline": p, "model": m, "seed": seed, "test_acc": [50.0, acc]}
            for (m, p), accs in finals.items() for seed, acc in enumerate(accs)]
    (tmp_path / "performance").mkdir()
    (tmp_path / "performance" / "bf16_accuracy.json").write_text(
        json.dumps({"epochs": 2, "native_bf16": True, "runs": runs}))
    en = tables.bf16_markdown(tmp_path, "en")
    assert "| CNN | 0, 1, 2 | 61.00\u00a0±\u00a01.00 | 60.70\u00a0±\u00a01.20 | -0.30\u00a0±\u00a00.12 |" in en
    assert "| CNN + SE | 0, 1, 2 | 61.00\u00a0±\u00a01.00 | 61.00\u00a0±\u00a01.00 | +0.00\u00a0±\u00a00.58 |" in en
    assert "CNN: the difference exceeds twice its standard error" in en
    assert "CNN + SE: within twice its standard error" in en and "in hardware" in en and "emulated" not in en
    speed = {"steps": 8, "threads": 2, "device": "test CPU", "native_bf16": False, "trustworthy": True,
             "models": {m: {"ours": {"images_per_second": 700.0}, "ours-bf16": {"images_per_second": 400.0},
                            "ratio_spread": {"median": 0.57, "q1": 0.55, "q3": 0.6}} for m in ("cnn", "se")}}
    (tmp_path / "performance" / "bf16_speed.json").write_text(json.dumps(speed))
    en = tables.bf16_markdown(tmp_path, "en")
    assert "| CNN | 700 | 400 | 0.57 (0.55–0.60) |" in en and "emulated in software" in en


@pytest.fixture
def paper_copy(tmp_path):
    """The committed paper run's inputs to figures and report, in a folder a test may break."""
    import shutil

    from conftest import ROOT

    run = tmp_path / "paper"
    shutil.copytree(ROOT / "results" / "paper", run, ignore=shutil.ignore_patterns("views", "logs", "model.pt"))
    return run


def test_a_truncated_history_is_one_line_naming_the_file(paper_copy, capsys):
    history = paper_copy / "runs" / "cnn" / "seed0" / "history.json"
    history.write_text(history.read_text()[:300])  # what a full disk or a killed copy leaves
    assert figures.main(["--run-dir", str(paper_copy), "--models", "cnn", "se", "--seed", "0",
                         "--lang", "en", "--dpi", "20"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {history}: expected a training run's history, found unreadable or truncated")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (paper_copy / "views").exists()  # nothing drawn from half a run


def test_a_truncated_probe_and_a_metrics_file_without_a_key_are_named(paper_copy, capsys):
    args = ["--run-dir", str(paper_copy), "--models", "cnn", "se", "--seeds", "0", "--langs", "en"]
    probe = paper_copy / "runs" / "se" / "seed0" / "probe.npz"
    probe.write_bytes(probe.read_bytes()[:1000])
    assert report.main(args) == 1
    assert f"error: {probe}: expected a trained model's probe, found unreadable or truncated" in capsys.readouterr().err
    metrics = paper_copy / "runs" / "cnn" / "seed0" / "metrics.json"
    record = json.loads(metrics.read_text())
    del record["final_test_acc"]
    metrics.write_text(json.dumps(record))
    assert report.main(args) == 1
    assert f"error: {metrics}: expected a training run's metrics, but it has no 'final_test_acc'" in \
        capsys.readouterr().err


def test_a_model_the_catalogue_lacks_is_named_with_the_file():
    with pytest.raises(KeyError, match=r"en\.yaml: no key 'report\.model\.resnet'"):
        tables.cost_markdown({"resnet": {"parameters": 1, "seconds_per_epoch": [1.0], "images_per_second": [1.0]}},
                             {}, "en")


def test_devices_and_layouts_read_in_the_page_language():
    assert tables.device_words("x86_64 CPU, 1 thread", "zh") == "x86&#95;64 CPU，1 个线程"
    assert tables.device_words("x86_64 CPU, 2 threads", "en") == "x86&#95;64 CPU, 2 threads"
    assert tables.device_words("NVIDIA H200", "zh") == "NVIDIA H200"  # a GPU's name stays as it is
    assert tables.layout_words("image-folder", "zh") == "图像文件夹（每个类别一个文件夹）"
    assert tables.layout_words("some<new>layout", "en") == "some&#60;new&#62;layout"


def test_architecture_rows_follow_the_order_of_computation():
    """conv-BN-ReLU -> SE -> pool: SE works on the full-resolution map, the pool halves it."""
    rows = [line.split(" | ")[:2] for line in tables.architecture_markdown(
        {"channels": [32, 64, 128], "hidden": 512, "dropout": 0.5, "se_reduction": 16}, "en").splitlines()[2:5]]
    assert rows == [["| input image", "3×32×32"], ["| block 1: conv 3×3, BN, ReLU", "32×32×32"],
                    ["| block 1: SE (32 → 2 → 32)", "32×32×32"]]


def test_se_step_fact_reads_the_benchmark_or_says_there_is_none(tmp_path):
    model = {"channels": [32, 64, 128], "hidden": 512, "dropout": 0.5, "se_reduction": 16}
    assert "No benchmark has been recorded" in tables.se_step_fact(tmp_path, model, "en")
    phases = {m: {"ours": {"phases_ms": {"data": 1.0, "forward": f, "backward": 2 * f, "optimizer": 0.5}}}
              for m, f in (("cnn", 10.0), ("se", 12.0))}
    (tmp_path / "performance").mkdir()
    (tmp_path / "performance" / "speed.json").write_text(json.dumps({"models": phases, "device": "x CPU, 2 threads"}))
    en = tables.se_step_fact(tmp_path, model, "en")
    assert "forward 10.0 → 12.0 ms, backward 20.0 → 24.0 ms" in en and "+20% for the two together" in en


def test_the_step_chart_draws_each_phase_to_scale_with_ids_of_its_own():
    import re
    import xml.etree.ElementTree as ET

    from se_attention import charts
    from se_attention.i18n import Words

    slow = {"data": 60.0, "forward": 40.0, "backward": 40.0, "optimizer": 10.0}  # 150 ms
    fast = {"data": 3.0, "forward": 15.0, "backward": 30.0, "optimizer": 2.0}  # 50 ms
    record = {"models": {"cnn": {"lesson": {"phases_ms": slow}, "ours": {"phases_ms": fast}}}}
    for lang in ("en", "zh"):
        t = Words(lang, "report")
        html = charts.step_phases(record, ("lesson", "ours"), t, "test-steps")
        svg = ET.fromstring(html.split("\n", 1)[1].rsplit("</div>", 1)[0])
        ns = "{http://www.w3.org/2000/svg}"
        assert svg.get("aria-labelledby") == "test-steps-title test-steps-desc"
        assert [e.get("id") for e in svg.iter() if e.get("id")] == ["test-steps-title", "test-steps-desc"]
        bars = [float(r.get("width")) for r in svg.iter(f"{ns}rect") if r.get("height") == f"{charts.BAR_HEIGHT:.1f}"]
        # the slowest step spans the bar width, each phase in proportion; the faster one a third of it
        assert bars[:4] == pytest.approx([charts.BAR_WIDTH * v / 150 for v in slow.values()], abs=0.1)
        assert sum(bars[4:]) == pytest.approx(charts.BAR_WIDTH / 3, abs=0.2)
        texts = "".join(e.text or "" for e in svg.iter(f"{ns}text"))
        assert t["phase"]["backward"] in texts and re.search(r"150\.0 (ms|毫秒)", texts)
