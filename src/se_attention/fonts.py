"""Find a CJK font for Chinese figure labels, or stop: matplotlib would silently draw boxes.

Order: the file named by $SE_ATTENTION_CJK_FONT; Noto Sans CJK SC shipped by the PyPI package
``mplfonts`` (OFL; its SimHei.ttf has no clear licence and is never used); then system fonts
such as Debian's fonts-wqy-microhei (the font the lesson names) or fonts-noto-cjk.
"""

from __future__ import annotations

import os
from pathlib import Path

SYSTEM_FONT_HINTS = ("wqymicrohei", "wqyzenhei", "notosanscjk", "notosanssc", "sourcehansans")
INSTALL_HINT = "pip install mplfonts (Noto Sans CJK SC, no root needed) or apt-get install fonts-wqy-microhei"


class FontError(RuntimeError):
    pass


def _candidates() -> list[Path]:
    env = os.environ.get("SE_ATTENTION_CJK_FONT")
    if env is not None:
        # An explicit choice is the only candidate, so a wrong path fails instead of falling back.
        return [Path(env)] if env else []
    out = []
    try:
        import mplfonts

        out.append(Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf")
    except ImportError:
        pass
    from matplotlib import font_manager

    for f in sorted(font_manager.findSystemFonts()):
        key = Path(f).name.lower().replace("-", "").replace("_", "")
        if any(h in key for h in SYSTEM_FONT_HINTS):
            out.append(Path(f))
    return out


def use_cjk_font() -> str:
    """Register the first CJK font found with matplotlib, make it the default; return its name."""
    import matplotlib
    from matplotlib import font_manager

    for path in _candidates():
        if path.is_file():
            font_manager.fontManager.addfont(str(path))
            name = font_manager.FontProperties(fname=str(path)).get_name()
            matplotlib.rcParams["font.family"] = [name, "DejaVu Sans"]
            matplotlib.rcParams["axes.unicode_minus"] = False
            return name
    raise FontError(f"no CJK font found for the Chinese figures; install one: {INSTALL_HINT} "
                    "(or set SE_ATTENTION_CJK_FONT to a .otf/.ttf file)")
