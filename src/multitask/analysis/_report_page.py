"""The report's page: its sections, embedded pictures, tables and numbers, and the HTML it renders to."""

from __future__ import annotations

import base64
import html
import math
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from multitask.errors import DataError

#: The heading of the training runs' section (`multitask.analysis._report_runs`).
RUNS = "Training runs: per-task curves, metrics, task weights and gates"
#: Section order on the page: results and verdicts first, the configuration last.
_ORDER = (
    *("results", "transfer", "chart", "problems", "affinity", "conflict"),
    *("pareto", "linear", "comparisons", "runs", "config"),
)
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1150px;margin:0 auto;padding:24px}
h1{font-size:1.7em;margin:0 0 4px}h2{border-bottom:2px solid #d9dde4;padding-bottom:4px;margin-top:36px}
h3{margin-top:24px}section{background:#fff;border-radius:8px;padding:8px 20px 16px;margin:16px 0;
box-shadow:0 1px 3px rgba(0,0,0,.08)}table{border-collapse:collapse;margin:10px 0;font-size:.92em}
th,td{border:1px solid #d9dde4;padding:4px 9px;text-align:right}th{background:#eef1f5}
td:first-child,th:first-child{text-align:left}img{max-width:100%;height:auto;display:block;margin:10px 0}
pre{background:#f0f2f5;padding:10px;overflow:auto;font-size:.85em}.muted{color:#667085}
.helps{color:#1a7f37;font-weight:600}.hurts{color:#c62828;font-weight:600}.none{color:#667085}
.warn{background:#fff4e5;border-left:4px solid #f59e0b;padding:6px 10px}nav a{margin-right:14px}
nav{font-size:.9em}details>summary{cursor:pointer;font-weight:600;padding:6px 0}
dl.methods{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:.92em}
dl.methods dt{font-family:monospace}dl.methods dd{margin:0}
.numbers{overflow-x:auto}.numbers td{white-space:nowrap}
"""


class ReportPage:
    """The page being built: its sections (each a list of HTML parts), in the order they were first asked for
    until `render` sorts them."""

    def __init__(self, directory: Path, *, verdicts: bool = False) -> None:
        self.directory = directory
        self.verdicts = verdicts  # the page has a negative-transfer section
        self.sections: list[tuple[str, str, list[str]]] = []  # (anchor, heading, html parts)
        self.config_name: str | None = None
        self._scratch = tempfile.TemporaryDirectory()

    def section(self, anchor: str, heading: str) -> list[str]:
        """The HTML parts of the section ``anchor``, a new one (titled ``heading``) the first time."""
        for existing, _, found in self.sections:
            if existing == anchor:
                return found
        parts: list[str] = []
        self.sections.append((anchor, heading, parts))
        return parts

    def where(self, path: Path) -> str:
        """The folder ``path`` is in, as the page names it."""
        relative = path.parent.relative_to(self.directory)
        return "the run folder" if str(relative) == "." else f"<code>{html.escape(str(relative))}/</code>"

    def heading(self, path: Path) -> str:
        """An ``<h3>`` naming the sub-folder ``path`` is in (nothing for the run folder itself)."""
        return "" if path.parent == self.directory else f"<h3>{self.where(path)}</h3>"

    def image(
        self, draw: Callable[[Path], Any], alt: str, saved: Path | None = None, source: Path | None = None
    ) -> str:
        """An ``<img>`` with the PNG embedded: ``saved`` when it exists and is not older than ``source``, else drawn."""
        if (
            saved is not None
            and saved.is_file()
            and (source is None or saved.stat().st_mtime >= source.stat().st_mtime)
        ):
            path = saved
        else:
            path = Path(self._scratch.name) / "figure.png"
            draw(path)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'

    def guard(self, path: Path, add: Callable[[ReportPage, Path], None]) -> None:
        """``add(self, path)``; a file it cannot read is listed in the section of problems instead."""
        try:
            add(self, path)
        except (DataError, ValueError, KeyError, TypeError, OSError) as error:
            parts = self.section("problems", "Files that could not be read")
            parts.append(
                f'<p class="warn">{html.escape(str(path.relative_to(self.directory)))}: {html.escape(str(error))}</p>'
            )

    def render(self, title: str) -> str:
        """The whole page: the sections in `_ORDER`, a navigation bar, the inline CSS."""
        sections = sorted(self.sections, key=lambda s: _ORDER.index(s[0]) if s[0] in _ORDER else len(_ORDER))
        nav = " ".join(f'<a href="#{a}">{html.escape(h)}</a>' for a, h, _ in sections)
        body = "".join(
            f'<section id="{a}"><h2>{html.escape(h)}</h2>{"".join(parts)}</section>' for a, h, parts in sections
        )
        self._scratch.cleanup()
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)} — multitask report</title><style>{_CSS}</style></head><body><main>"
            f'<h1>{html.escape(title)}</h1><p class="muted">multitask report of '
            f"<code>{html.escape(str(self.directory))}</code></p><nav>{nav}</nav>{body}</main></body></html>\n"
        )


def table(header: Sequence[str], rows: Sequence[Sequence[str]], *, escape: bool = True, css: str = "") -> str:
    """An HTML table (the cells escaped unless ``escape`` is false), in a ``<div class=css>`` when given."""

    def cell(value: str) -> str:
        return html.escape(value) if escape else value

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    rendered = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="{css}">{rendered}</div>' if css else rendered


def number(value: float | None, *, signed: bool = False) -> str:
    """``value`` with four decimals (a sign when ``signed``); ``n/a`` for none or NaN, ``±∞`` for infinities."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "−∞" if value < 0 else "+∞"
    return f"{value:+.4f}" if signed else f"{value:.4f}"
