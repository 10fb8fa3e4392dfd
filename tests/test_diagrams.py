"""The diagrams: drawn from the model (not typed in), in both languages, text that fits and is escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from se_attention import diagrams
from se_attention.outputs import DIAGRAM_NAMES
from se_attention.se import se_parameter_count
from se_attention.svg import Canvas, Line, text_width, wrap

LESSON = {"channels": [32, 64, 128], "hidden": 512, "dropout": 0.5, "se_reduction": 16}
NS = {"svg": "http://www.w3.org/2000/svg"}


def words(svg: str) -> str:
    """Every piece of text a reader sees, subscripts joined to their line."""
    root = ET.fromstring(svg)
    return "\n".join("".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))


@pytest.fixture(scope="module")
def drawn() -> dict[str, dict[str, str]]:
    return {lang: diagrams.draw_all(LESSON, lang) for lang in ("en", "zh")}


def test_every_diagram_is_an_accessible_svg_with_a_title_in_its_language(drawn):
    for lang, by_name in drawn.items():
        assert list(by_name) == DIAGRAM_NAMES
        for name, svg in by_name.items():
            root = ET.fromstring(svg)
            assert root.get("role") == "img" and root.get("viewBox"), name
            title = root.find("svg:title", NS).text
            assert title and root.find("svg:desc", NS).text, name
            has_cjk = bool(re.search(r"[\u4e00-\u9fff]", title + words(svg)))
            assert has_cjk == (lang == "zh"), (lang, name)


def test_shapes_and_counts_come_from_the_model_not_from_the_text(drawn):
    text = words(drawn["en"]["se_block"])
    assert "128 × 8 × 8" in text and "128 → 8" in text
    assert f"{se_parameter_count(128, 16):,}" in text
    other = {"channels": [16, 24, 48], "hidden": 64, "dropout": 0.5, "se_reduction": 4}
    changed = {name: words(svg) for name, svg in diagrams.draw_all(other, "en").items()}
    assert "48 × 8 × 8" in changed["se_block"] and "48 → 12" in changed["se_block"]
    assert "128" not in changed["se_block"]
    assert f"{se_parameter_count(48, 4):,}" in changed["se_block"]
    # The CNN: each block's shapes, then the head's widths as built.
    assert "16 × 32 × 32" in changed["se_in_cnn"] and "48 × 4 × 4" in changed["se_in_cnn"]
    assert "768 → 64" in changed["se_in_cnn"] and "64 → 10" in changed["se_in_cnn"]


def test_the_placement_diagram_shows_each_order_as_the_block_runs_it(drawn):
    text = words(drawn["en"]["se_placement"])
    lines = text.splitlines()
    # Left column (after the conv): SE on the full map; right (after the pool): SE on the pooled map.
    assert "32 × 32 × 32" in text and "32 × 16 × 16" in text
    assert "averages 1,024 values" in text and "averages 256 values" in text
    # The multiply-adds of the note are the module's own count at each place.
    assert "32,896" in text and "8,320" in text
    assert lines.index("after the conv") < lines.index("after the pool")


def test_subscripts_are_lowered_text_not_markup(drawn):
    svg = drawn["en"]["se_block"]
    assert "_[" not in svg
    assert "<tspan" in svg and "scale: X̃c = sc · Xc" in words(svg)


def test_canvas_escapes_what_it_is_given():
    canvas = Canvas('<script>alert(1)</script>', 'a & b')
    canvas.box(100, 10, [Line("<img src=x onerror=alert(1)>")], "#fff")
    svg = canvas.to_string()
    assert "<img" not in svg and "<script>" not in svg
    assert "&lt;img src=x onerror=alert(1)&gt;" in svg
    ET.fromstring(svg)


def test_a_box_is_as_wide_as_its_longest_line_needs():
    canvas = Canvas("t", "d")
    long = "a line much longer than the box's minimum width"
    box = canvas.box(300, 0, [Line("short"), Line(long, 13)], "#fff", min_width=50, pad=10)
    assert box.w == pytest.approx(text_width(long, 13) + 20)
    assert canvas.box(300, 0, [Line("x")], "#fff", min_width=80).w == 80


@pytest.mark.parametrize("text", [
    "The same SE block, 128 weights, in both places. A gate is positive and the same for a whole channel.",
    "两处用的是同一个 SE 模块，128 个权重。门控是正数，而且对整个通道相同，所以先缩放再池化与先池化再缩放结果一样。",
])
def test_wrapped_lines_fit_keep_every_word_and_never_start_with_closing_punctuation(text):
    lines = wrap(text, 200, 13)
    assert len(lines) > 2
    assert all(text_width(line, 13) <= 200 for line in lines)
    assert re.sub(r"\s", "", "".join(lines)) == re.sub(r"\s", "", text)
    assert not any(line[0] in "，。、；：,.;:" for line in lines)


@pytest.mark.parametrize("settings, expected", [
    ("not json", "--model-settings"),
    ('[32, 64]', "expected a JSON object, found list"),
    ('{"channels": [32, 64, 128], "se_reduction": 64}', "SE reduction 64 is larger than the 32 channels"),
    ('{"chanels": [32]}', "chanels"),
])
def test_bad_settings_are_refused_with_the_reason_and_nothing_is_written(tmp_path, capsys, settings, expected):
    assert diagrams.main(["--model-settings", settings, "--lang", "en", "--out-dir", str(tmp_path / "out")]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
