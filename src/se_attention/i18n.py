"""The words readers see, one YAML catalogue per language: ``locales/<lang>.yaml``.

Why YAML and not gettext: a translator edits one readable file per language with stable keys and
``str.format`` fields, no compile step and no Python; the nesting mirrors the code that uses it
(``report``, ``figures``, ``notebook``). ``tests/test_i18n.py`` checks that every catalogue has the
same keys, the same fields in each string and the same plural forms, so a translation that drops
``{p}`` fails a test instead of losing the p-value.

    text("en", "report.adam", lr=0.001)            # 'Adam, learning rate 0.001'
    text("zh", "figures.band", count=3, model="CNN")  # a plural: the form is chosen by count

A plural is a mapping with the forms ``one`` and ``other``, chosen by the ``count`` field: ``one``
for exactly one, ``other`` for any other number. Both languages keep both forms: here "one" is a
different statement (one seed has no spread), not only a different grammatical number.
"""

from __future__ import annotations

import functools
import string
from pathlib import Path
from typing import Any

import yaml

LOCALES = Path(__file__).resolve().parent / "locales"
PLURAL_FORMS = ("one", "other")


class CatalogueError(KeyError):
    """A language, key or field the catalogue lacks; the message names the file and the key."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def languages() -> list[str]:
    return sorted(p.stem for p in LOCALES.glob("*.yaml"))


def catalogue_path(lang: str) -> Path:
    return LOCALES / f"{lang}.yaml"


@functools.cache
def catalogue(lang: str) -> dict[str, Any]:
    path = catalogue_path(lang)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"{path}: no catalogue for language {lang!r}; expected one of {languages()}") from None


def is_plural(entry: Any) -> bool:
    return isinstance(entry, dict) and set(entry) == set(PLURAL_FORMS)


def lookup(lang: str, key: str) -> Any:
    """The raw entry at the dotted ``key``: a string, a list, a plural or a section."""
    node: Any = catalogue(lang)
    for depth, part in enumerate(key.split(".")):
        try:
            node = node[int(part) if isinstance(node, list) else part]
        except (KeyError, IndexError, TypeError, ValueError):
            where = ".".join(key.split(".")[:depth]) or "the top level"
            raise CatalogueError(f"{catalogue_path(lang)}: no key {key!r} ({part!r} is not under {where})") from None
    return node


def text(lang: str, key: str, /, **fields: Any) -> Any:
    """The words at ``key`` in ``lang``, formatted with ``fields``; a list comes back as a list.

    A plural entry needs ``count``, which picks the form and is also a field ({count}).
    """
    entry = lookup(lang, key)
    if is_plural(entry):
        if "count" not in fields:
            raise CatalogueError(f"{catalogue_path(lang)}: {key!r} is a plural; pass count=<number>")
        entry = entry["one" if fields["count"] == 1 else "other"]
    if isinstance(entry, dict):
        raise CatalogueError(f"{catalogue_path(lang)}: {key!r} is a section ({', '.join(entry)}), not words")
    return _format(lang, key, entry, fields)


def _format(lang: str, key: str, entry: Any, fields: dict[str, Any]) -> Any:
    if isinstance(entry, list):
        return [_format(lang, key, e, fields) for e in entry]
    if not isinstance(entry, str):
        return entry
    missing = sorted(fields_of(entry) - fields.keys())
    if missing:
        raise CatalogueError(f"{catalogue_path(lang)}: {key!r} needs the field(s) {missing}; "
                             f"given {sorted(fields) or 'none'}")
    return entry.format(**fields)


def fields_of(entry: str) -> set[str]:
    """The names of the ``{fields}`` a string uses."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(entry) if name}


class Words:
    """One language's section of the catalogue, as the code that writes or draws it reads it.

    ``w("adam", lr=0.001)`` is ``text(lang, "report.adam", lr=0.001)``; ``w["model"]["se"]`` reads a
    nested entry (a header list, a class name) that needs no fields.
    """

    def __init__(self, lang: str, section: str) -> None:
        self.lang, self.section = lang, section
        lookup(lang, section)  # fail here, naming the file, if the language or section is missing

    def __call__(self, key: str, /, **fields: Any) -> Any:
        return text(self.lang, f"{self.section}.{key}", **fields)

    def __getitem__(self, key: str | int) -> Any:
        entry = lookup(self.lang, f"{self.section}.{key}")
        return Words(self.lang, f"{self.section}.{key}") if isinstance(entry, dict) and not is_plural(entry) else entry
