"""The pieces a page is made of: a section holds HTML parts, and a gap is one line saying what is
missing and why (a damaged or absent piece never breaks the page)."""
from __future__ import annotations

import html
from dataclasses import dataclass, field


@dataclass
class Gap:
    what: str  # e.g. "training curves of run X"
    why: str   # one line: what is missing and what would fill it

    def html(self) -> str:
        return f'<p class="gap"><b>{esc(self.what)}</b>: {esc(self.why)}</p>'


@dataclass
class Section:
    key: str    # the HTML id, also the screenshot's name in the browser test
    title: str
    parts: list[str] = field(default_factory=list)  # HTML fragments, already escaped
    gaps: list[Gap] = field(default_factory=list)

    def add(self, part: str) -> None:
        self.parts.append(part)

    def gap(self, what: str, why: str) -> None:
        self.gaps.append(Gap(what, why))

    def html(self) -> str:
        body = "\n".join(self.parts + [g.html() for g in self.gaps]) or '<p class="gap">nothing to show</p>'
        return f'<section id="{esc(self.key)}">\n<h2>{esc(self.title)}</h2>\n{body}\n</section>'


def esc(text) -> str:
    """Text from a record as HTML text (quotes too: it also goes into attributes)."""
    return html.escape(str(text), quote=True)


def json_for_script(text: str) -> str:
    """JSON text safe inside ``<script type="application/json">``: no ``</script>`` or ``<!--`` can end it."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
