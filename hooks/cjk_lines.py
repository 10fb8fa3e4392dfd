"""MkDocs hook: a line break between two Chinese characters is not a space.

A browser shows the line break of a wrapped source line as a space. Between Chinese characters, or
after Chinese punctuation, that space is a gap no Chinese typesetter would leave ("很小： 两层全连接").
So that the pages' source can stay wrapped for review, this joins such lines before Markdown reads
them: only where a line ends with a CJK character or mark (emphasis markers may follow) and the next
line, after its indent, starts with one; never inside fenced code, never after a heading.
"""

import re

CJK = "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
ENDS_CJK = re.compile(rf"[{CJK}][*_]*$")
STARTS_CJK = re.compile(rf"[*_]*[{CJK}]")
FENCES = ("```", "~~~")


def join_cjk_lines(markdown: str) -> str:
    out: list[str] = []
    fence = None
    for line in markdown.split("\n"):
        stripped = line.lstrip()
        if fence is not None or stripped.startswith(FENCES):
            if fence is None:
                fence = stripped[:3]
            elif stripped.startswith(fence):
                fence = None
            out.append(line)
            continue
        previous = out[-1] if out else ""
        if (previous and ENDS_CJK.search(previous) and STARTS_CJK.match(stripped)
                and not previous.lstrip().startswith(("#", "|", "???", "!!!")) and not stripped.startswith("|")):
            out[-1] = previous + stripped
        else:
            out.append(line)
    return "\n".join(out)


def on_page_markdown(markdown, page, config, files):
    return join_cjk_lines(markdown)
