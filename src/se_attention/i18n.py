"""The words readers see, one YAML catalogue per language: ``locales/<lang>.yaml``.

Why YAML and not gettext: a translator edits one readable file per language with stable keys and
``str.format`` fields, no compile step and no Python; the nesting mirrors the code that uses it
(``report``, ``figures``). ``tests/test_i18n.py`` checks that every catalogue has the same keys,
the same fields in each string and the same plural forms, so a translation that drops ``{p}``
fails a test instead of losing the p-value.

A plural is a mapping with the forms ``one`` and ``other``; ``plural(entry, n)`` picks one.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

LOCALES = Path(__file__).resolve().parent / "locales"
PLURAL_FORMS = ("one", "other")


class CatalogueError(KeyError):
    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


@functools.cache
def catalogue(lang: str) -> dict[str, Any]:
    path = LOCALES / f"{lang}.yaml"
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = sorted(p.stem for p in LOCALES.glob("*.yaml"))
        raise CatalogueError(f"{path}: no catalogue for language {lang!r}; expected one of {known}") from None


def languages() -> list[str]:
    return sorted(p.stem for p in LOCALES.glob("*.yaml"))


class Texts(Mapping):
    """``Texts("report")[lang]``: that language's section, as the code that draws or writes it reads it."""

    def __init__(self, section: str) -> None:
        self.section = section

    def __getitem__(self, lang: str) -> dict[str, Any]:
        try:
            return catalogue(lang)[self.section]
        except KeyError:
            raise CatalogueError(f"{LOCALES / (lang + '.yaml')}: no section {self.section!r}") from None

    def __iter__(self):
        return iter(languages())

    def __len__(self) -> int:
        return len(languages())


def plural(entry: Mapping[str, str], n: int, **fields: Any) -> str:
    """The form of ``entry`` for a count of ``n``, formatted with ``n`` and ``fields``."""
    return entry["one" if n == 1 else "other"].format(n=n, **fields)
