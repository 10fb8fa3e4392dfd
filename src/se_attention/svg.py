"""A small SVG canvas for diagrams: boxes that size themselves to their text, arrows, wrapped notes.

Text stays text (<text>, not glyph outlines): the reader's browser sets it in the page's fonts, a
search finds it, a screen reader reads it, and a Chinese diagram needs no embedded CJK font. The
price is that the exact width of a string is the browser's business; ``text_width`` is a generous
estimate (CJK characters 1 em, others 0.6 em, wider than any common sans serif), and boxes and
wrapped lines are sized from it, so text never runs out of its box.

ElementTree writes the file, so every string is escaped: a name with ``<`` or ``&`` stays text.
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass

FONT = ("'Noto Sans', 'Noto Sans CJK SC', 'Source Han Sans SC', 'PingFang SC', 'Microsoft YaHei', "
        "'Helvetica Neue', Arial, sans-serif")
INK = "#222"
LINE_GAP = 1.3  # line height as a multiple of the font size
# A CJK character, or a run of anything else up to and including its trailing spaces: the units a
# line may break between (Chinese breaks between any two characters, English between words).
BREAKABLE = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]|[^\s\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]+\s*|\s+")


# Closing punctuation never starts a line (Chinese typesetting's first rule of line breaking).
NO_LINE_START = set("，。、；：？！）》」』】”’,.;:?!)")
# A subscript in a catalogue's text: X_[c] (not braces, which str.format would read as a field).
SUBSCRIPT = re.compile(r"_\[([^\]]*)\]")


def plain(text: str) -> str:
    """``text`` as read, subscript markup removed."""
    return SUBSCRIPT.sub(r"\1", text)


def text_width(text: str, size: float) -> float:
    """A generous estimate of the width of ``text`` set at ``size`` px."""
    return size * sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.6 for ch in plain(text))


def box_width(lines: list["Line"], pad: float = 10) -> float:
    """The width of a box that holds ``lines`` with ``pad`` on either side."""
    return max(text_width(line.text, line.size) for line in lines) + 2 * pad


def wrap(text: str, width: float, size: float) -> list[str]:
    """``text`` broken into lines no wider than ``width`` (a single unit wider than that keeps its line)."""
    lines, line = [], ""
    for unit in BREAKABLE.findall(text):
        if line and unit[0] not in NO_LINE_START and text_width((line + unit).rstrip(), size) > width:
            lines.append(line.rstrip())
            line = unit.lstrip()
        else:
            line += unit
    if line.strip():
        lines.append(line.rstrip())
    return lines


@dataclass(frozen=True)
class Line:
    """One line of a box: its text, size and weight."""

    text: str
    size: float = 14
    bold: bool = False
    colour: str = INK


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def top(self) -> tuple[float, float]:
        return self.cx, self.y

    @property
    def bottom(self) -> tuple[float, float]:
        return self.cx, self.y + self.h

    @property
    def left(self) -> tuple[float, float]:
        return self.x, self.cy

    @property
    def right(self) -> tuple[float, float]:
        return self.x + self.w, self.cy


def _set_text(element: ET.Element, text: str, size: float) -> None:
    """The element's text, each X_[c] as a lowered, smaller tspan (dy keeps it on every renderer)."""
    parts = SUBSCRIPT.split(text)  # text, subscript, text, subscript, ...
    element.text = parts[0]
    for sub, after in zip(parts[1::2], parts[2::2]):
        low = ET.SubElement(element, "tspan", {"dy": f"{0.25 * size:.1f}", "font-size": f"{0.75 * size:.1f}"})
        low.text = sub
        back = ET.SubElement(element, "tspan", {"dy": f"{-0.25 * size:.1f}"})
        back.text = after


class Canvas:
    """Elements in drawing order; the view box grows to hold all of them, plus a margin."""

    def __init__(self, title: str, description: str, margin: float = 12, id_prefix: str = "") -> None:
        # id_prefix keeps the ids of an SVG set inline in a page apart from those of any other on it.
        self.title, self.description, self.margin, self.id_prefix = title, description, margin, id_prefix
        self.elements: list[ET.Element] = []
        self.markers: dict[str, str] = {}  # arrow colour -> marker id
        self.right = self.bottom = 0.0

    def _grow(self, x: float, y: float) -> None:
        self.right, self.bottom = max(self.right, x), max(self.bottom, y)

    def _add(self, tag: str, **attrs) -> ET.Element:
        element = ET.Element(tag, {k.rstrip("_").replace("_", "-"): str(v) for k, v in attrs.items()})
        self.elements.append(element)
        return element

    def text(self, x: float, y: float, text: str, size: float = 14, anchor: str = "start", colour: str = INK,
             bold: bool = False, italic: bool = False) -> None:
        """One line with its baseline at ``y``."""
        element = self._add("text", x=f"{x:.1f}", y=f"{y:.1f}", font_size=size, text_anchor=anchor, fill=colour,
                            **({"font_weight": "bold"} if bold else {}), **({"font_style": "italic"} if italic else {}))
        _set_text(element, text, size)
        width = text_width(text, size)
        start = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
        self._grow(start + width, y + 0.3 * size)

    def paragraph(self, x: float, y: float, text: str, width: float, size: float = 13, colour: str = INK) -> float:
        """``text`` wrapped to ``width`` from the top ``y``; returns the y below its last line."""
        for line in wrap(text, width, size):
            y += size * LINE_GAP
            self.text(x, y - 0.3 * size, line, size, colour=colour)
        return y

    def box(self, cx: float, y: float, lines: list[Line], fill: str, min_width: float = 0, pad: float = 10,
            stroke: str = "#555", dashed: bool = False, rounded: float = 6) -> Box:
        """A box centred on ``cx`` with its top at ``y``, as wide as its longest line needs."""
        w = max(min_width, box_width(lines, pad))
        h = sum(line.size * LINE_GAP for line in lines) + pad
        return self.frame(cx - w / 2, y, w, h, lines, fill, stroke=stroke, dashed=dashed, rounded=rounded)

    def frame(self, x: float, y: float, w: float, h: float, lines: list[Line], fill: str, stroke: str = "#555",
              dashed: bool = False, rounded: float = 6, align: str = "middle") -> Box:
        """A box of a given size; ``lines`` from its top, centred (or from the left for align="start")."""
        self._add("rect", x=f"{x:.1f}", y=f"{y:.1f}", width=f"{w:.1f}", height=f"{h:.1f}", rx=rounded, fill=fill,
                  stroke=stroke, stroke_width=1.2, **({"stroke_dasharray": "5 4"} if dashed else {}))
        self._grow(x + w, y + h)
        top = y + 5
        for line in lines:
            top += line.size * LINE_GAP
            tx = x + w / 2 if align == "middle" else x + 10
            self.text(tx, top - 0.35 * line.size, line.text, line.size, anchor=align, colour=line.colour,
                      bold=line.bold)
        return Box(x, y, w, h)

    def circle(self, cx: float, cy: float, r: float, symbol: str, fill: str = "#fff") -> Box:
        self._add("circle", cx=f"{cx:.1f}", cy=f"{cy:.1f}", r=r, fill=fill, stroke="#555", stroke_width=1.2)
        self.text(cx, cy + 0.36 * 1.5 * r, symbol, size=1.5 * r, anchor="middle")
        self._grow(cx + r, cy + r)
        return Box(cx - r, cy - r, 2 * r, 2 * r)

    def arrow(self, *points: tuple[float, float], colour: str = "#444", dashed: bool = False) -> None:
        """A polyline through ``points`` with an arrow head at the last one."""
        if colour not in self.markers:
            self.markers[colour] = f"{self.id_prefix}head{len(self.markers)}"
        path = " ".join(f"{'M' if i == 0 else 'L'} {x:.1f} {y:.1f}" for i, (x, y) in enumerate(points))
        self._add("path", d=path, fill="none", stroke=colour, stroke_width=1.6,
                  marker_end=f"url(#{self.markers[colour]})", **({"stroke_dasharray": "5 4"} if dashed else {}))
        for x, y in points:
            self._grow(x, y)

    def bracket(self, x: float, top: float, bottom: float, label: str, colour: str, size: float = 13) -> None:
        """A vertical bracket opening to the right at ``x``, its label to the left of it."""
        self._add("path", d=f"M {x + 6:.1f} {top:.1f} L {x:.1f} {top:.1f} L {x:.1f} {bottom:.1f} L {x + 6:.1f} {bottom:.1f}",
                  fill="none", stroke=colour, stroke_width=1.6)
        self.text(x - 6, (top + bottom) / 2 + 0.35 * size, label, size, anchor="end", colour=colour, bold=True)

    def to_string(self, fluid: bool = False) -> str:
        """The SVG file's text; ``fluid``: as wide as its container up to its own width (for an SVG set inline)."""
        width, height = self.right + self.margin, self.bottom + self.margin
        size = ({"style": f"width: 100%; max-width: {width:.0f}px; height: auto"} if fluid
                else {"width": f"{width:.0f}", "height": f"{height:.0f}"})
        title_id, desc_id = f"{self.id_prefix}title", f"{self.id_prefix}desc"
        root = ET.Element("svg", {"xmlns": "http://www.w3.org/2000/svg", "viewBox": f"0 0 {width:.0f} {height:.0f}",
                                  **size, "role": "img", "aria-labelledby": f"{title_id} {desc_id}", "font-family": FONT})
        ET.SubElement(root, "title", id=title_id).text = self.title
        ET.SubElement(root, "desc", id=desc_id).text = self.description
        defs = ET.SubElement(root, "defs")
        for colour, marker_id in self.markers.items():
            marker = ET.SubElement(defs, "marker", id=marker_id, viewBox="0 0 10 10", refX="9", refY="5",
                                   markerWidth="7", markerHeight="7", orient="auto-start-reverse")
            ET.SubElement(marker, "path", d="M 0 0 L 10 5 L 0 10 z", fill=colour)
        # An opaque background: the diagram reads the same on any page colour.
        ET.SubElement(root, "rect", width="100%", height="100%", fill="#fff")
        root.extend(self.elements)
        # One element per line, but no indenting inside <text>: there whitespace is shown.
        root.text = "\n"
        for element in root:
            element.tail = "\n"
        return ET.tostring(root, encoding="unicode", xml_declaration=False) + "\n"
