"""The catalogues: both languages say the same things with the same fields, and src/ holds no words."""

import re
from pathlib import Path

import pytest

from se_attention import i18n

SRC = Path(i18n.__file__).parent


def shape(node, path=()):
    """Every leaf of a catalogue: (key path, kind, fields), where fields are a string's {placeholders}."""
    if isinstance(node, dict):
        if set(node) == set(i18n.PLURAL_FORMS):
            yield path, "plural", tuple(sorted(fields(node["one"]) | fields(node["other"]) | {"count"}))
            return
        for key, value in node.items():
            yield from shape(value, (*path, key))
    elif isinstance(node, list):
        yield path, f"list of {len(node)}", tuple(sorted(set().union(*(fields(v) for v in node if isinstance(v, str)))))
    else:
        yield path, type(node).__name__, tuple(sorted(fields(node))) if isinstance(node, str) else ()


fields = i18n.fields_of


def differences(a: dict, b: dict) -> list[str]:
    sa, sb = {p: (k, f) for p, k, f in shape(a)}, {p: (k, f) for p, k, f in shape(b)}
    out = [f"only in the first: {'.'.join(p)}" for p in sa.keys() - sb.keys()]
    out += [f"only in the second: {'.'.join(p)}" for p in sb.keys() - sa.keys()]
    out += [f"{'.'.join(p)}: {sa[p]} against {sb[p]}" for p in sa.keys() & sb.keys() if sa[p] != sb[p]]
    return sorted(out)


def test_the_catalogues_have_the_same_keys_fields_and_plural_forms():
    langs = i18n.languages()
    assert langs == ["en", "zh"]
    for lang in langs[1:]:
        assert differences(i18n.catalogue(langs[0]), i18n.catalogue(lang)) == []


def test_the_check_catches_a_dropped_field_a_missing_key_and_a_lost_plural_form():
    en = {"gap": "p = {p}, gap {gap:+.2f}", "band": {"one": "{model} (1 seed)", "other": "{model}: {n} seeds"},
          "head": ["Model", "Seeds"]}
    zh = {"gap": "差距 {gap:+.2f}", "band": "{model}", "head": ["模型"], "extra": "多余"}
    found = differences(en, zh)
    assert "gap: ('str', ('gap', 'p')) against ('str', ('gap',))" in found
    assert "only in the second: extra" in found
    assert any(d.startswith("band") for d in found) and any(d.startswith("head") for d in found)


def test_every_string_formats_with_its_fields():
    for lang in i18n.languages():
        for path, kind, names in shape(i18n.catalogue(lang)):
            node = i18n.catalogue(lang)
            for key in path:
                node = node[key]
            values = {name: 1 for name in names}
            for text in (node.values() if kind == "plural" else node if kind.startswith("list") else [node]):
                if isinstance(text, str):
                    text.format(**values)  # a broken brace or a format spec that does not fit raises


def test_src_holds_no_words_for_readers_in_chinese():
    cjk = re.compile(r"[\u4e00-\u9fff]")
    offenders = [f"{p.name}:{i}" for p in sorted(SRC.glob("*.py"))
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if cjk.search(line)]
    assert offenders == []


def test_a_missing_language_names_the_file_and_the_choices():
    with pytest.raises(i18n.CatalogueError, match=r"fr\.yaml: no catalogue for language 'fr'; expected one of \['en', 'zh'\]"):
        i18n.catalogue("fr")


def test_plural_picks_the_form_by_count():
    assert i18n.text("en", "figures.band", count=1, model="CNN") == "CNN (1 seed)"
    assert i18n.text("en", "figures.band", count=3, model="CNN") == "CNN: mean of 3 seeds, band = min–max"
    assert i18n.text("zh", "report.lit_this_study", count=3) == "本实验，3 个种子的均值"
    with pytest.raises(i18n.CatalogueError, match=r"en\.yaml: 'figures\.band' is a plural; pass count="):
        i18n.text("en", "figures.band", model="CNN")


def test_a_missing_key_names_the_file_and_the_key():
    with pytest.raises(i18n.CatalogueError, match=r"zh\.yaml: no key 'report\.model\.resnet' \('resnet' is not under "
                                                  r"report\.model\)"):
        i18n.text("zh", "report.model.resnet")
    with pytest.raises(i18n.CatalogueError, match=r"en\.yaml: no key 'report\.model\.resnet'"):
        i18n.Words("en", "report")["model"]["resnet"]


def test_a_field_not_given_names_the_file_the_key_and_the_field():
    with pytest.raises(i18n.CatalogueError, match=r"en\.yaml: 'report\.verdict_none' needs the field\(s\) \['p'\]"):
        i18n.text("en", "report.verdict_none", n=3, gap=0.1, lo=-0.2, hi=0.4, level=95)


def test_words_format_lists_and_read_nested_entries():
    w = i18n.Words("en", "report")
    assert w("stats_head", level=95)[3] == "95% CI of the mean gap (t, n − 1 df)"
    assert w["model"]["se"] == "CNN + SE" and w["metrics_head"][0] == "Model"
    assert w("adam", lr=0.001) == i18n.text("en", "report.adam", lr=0.001) == "Adam, learning rate 0.001"


def test_the_notebook_is_one_source_run_in_each_language():
    import nbformat

    from se_attention.notebook import localize

    source = Path(__file__).resolve().parents[1] / "notebooks" / "explore.ipynb"
    for lang in i18n.languages():
        notebook = localize(nbformat.read(source, as_version=4), lang)
        tagged = [c for c in notebook.cells if c.cell_type == "markdown"]
        assert tagged and all(c.metadata.get("i18n") for c in tagged)  # every Markdown cell has its words
        assert f"explore.{lang}.ipynb" in tagged[0].source
    cjk = re.compile(r"[\u4e00-\u9fff]")
    assert all(cjk.search(c.source) for c in localize(nbformat.read(source, as_version=4), "zh").cells
               if c.cell_type == "markdown")


def test_the_executed_chinese_notebook_prints_and_plots_in_chinese():
    import nbformat

    run = Path(__file__).resolve().parents[1] / "results" / "paper" / "views" / "notebooks"
    printed = "".join(o.get("text", "") for c in nbformat.read(run / "explore.zh.ipynb", as_version=4).cells
                      if c.cell_type == "code" for o in c.outputs)
    assert "通道" in printed and "猫" in printed and "channel" not in printed
