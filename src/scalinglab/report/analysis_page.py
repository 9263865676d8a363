"""A self-contained HTML page for an ``analyze`` run: sections of tables and embedded figures, no network access.

Used by ``scalinglab analyze`` (paper 2's error analyses); the sweep report links the page when the analysis
directory sits inside the results directory (``report.build`` looks for ``*/analysis.json``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from scalinglab import __version__
from scalinglab.report.html import _CSS, _fmt


@dataclass
class Section:
    """One section of the page: a heading, paragraphs, tables (header + rows) and figures (path + caption)."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[Any]]]] = field(default_factory=list)
    figures: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _table(caption: str, header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{escape(str(h))}</th>' for i, h in enumerate(header))
    body = []
    for row in rows:
        cells = "".join(f'<td class="{"l" if i == 0 else ""}">{escape(_fmt(v) if not isinstance(v, str) else v)}</td>'
                        for i, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    cap = f"<p><b>{escape(caption)}</b></p>" if caption else ""
    return f'{cap}<div class="scroll"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return (f'<figure><img alt="{escape(Path(path).name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(caption)} <code>{escape(Path(path).name)}</code></figcaption></figure>")


def write_page(path: str | Path, title: str, intro: str, sections: list[Section]) -> Path:
    """Write the page to ``path`` (atomic) and return it."""
    path = Path(path)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>",
             f"<p class='meta'>{escape(intro)}<br>scalinglab {__version__}, "
             f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}</p>"]
    for sec in sections:
        parts.append(f"<h2>{escape(sec.title)}</h2>")
        parts += [f"<p>{escape(p)}</p>" for p in sec.paragraphs]
        parts += [f"<p class='note'>{escape(n)}</p>" for n in sec.notes]
        parts += [_table(*t) for t in sec.tables]
        parts += [_figure(p, c) for p, c in sec.figures if Path(p).is_file()]
    parts.append("</body></html>")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(parts))
    tmp.replace(path)
    return path
