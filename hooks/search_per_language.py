"""MkDocs hook: one search index per language, so an English query on an English page finds English pages.

mkdocs-static-i18n merges every language into one search/search_index.json, and Material's search
reads the index under the page's `base`. After the build this splits the index: the default
language keeps search/search_index.json, each other language gets <lang>/search/search_index.json
(locations made relative to <lang>/), and that language's pages point their `base` at <lang>/.
Both indexes keep the same tokenizer (English, with jieba's word breaks in Chinese text), so mixed
terms such as "Grad-CAM" are found in either language.
"""

from __future__ import annotations

import json
import os
import re

import mkdocs.plugins


def _languages(config) -> tuple[str, list[str]]:
    i18n = config.plugins["i18n"]
    return i18n.default_language, [lang.locale for lang in i18n.config.languages if lang.locale != i18n.default_language]


@mkdocs.plugins.event_priority(-1000)
def on_post_page(output, page, config):
    i18n = config.plugins["i18n"]
    lang = i18n.current_language
    if lang == i18n.default_language:
        return output
    # "base" is the path from this page to the site root; this language's index lives under <lang>/.
    return re.sub(r'("base": ")([^"]*)(")', lambda m: f"{m.group(1)}{m.group(2)}/{lang}/{m.group(3)}", output, count=1)


@mkdocs.plugins.event_priority(-1000)
def on_post_build(config):
    default, others = _languages(config)
    path = os.path.join(config["site_dir"], "search", "search_index.json")
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as fh:
        index = json.load(fh)
    by_lang = {lang: [d for d in index["docs"] if d["location"].startswith(f"{lang}/")] for lang in others}
    if not all(by_lang.values()):
        return  # i18n writes the index once per language build; split only the final, merged one
    for lang, docs in by_lang.items():
        local = [{**d, "location": d["location"][len(lang) + 1:]} for d in docs]
        _write(os.path.join(config["site_dir"], lang, "search", "search_index.json"), {**index, "docs": local})
    taken = {id(d) for docs in by_lang.values() for d in docs}
    _write(path, {**index, "docs": [d for d in index["docs"] if id(d) not in taken]})


def _write(path: str, index: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(index, fh, ensure_ascii=False, separators=(",", ":"))
