"""The self-contained HTML report: ``index.html`` beside its PNG figures and ``report.json``.

Offline by construction: no scripts, no external fonts or style sheets (the CSS is inline, system
fonts only), images are relative PNG paths. ``report.json`` holds the same figures, captions and
numbers for programs (the web app shows the figures from it).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Sequence

from lumachrome.atomic import atomic_write_text
from lumachrome.explain.figures import FigureInfo

__all__ = ["SECTIONS", "write_report"]

#: Report sections in order: ``(id, heading, introduction)``.
SECTIONS = (
    ("result", "Input and result", ""),
    ("stages", "Coarse to fine", "How the colour builds up from the bottleneck to the output."),
    ("layers", "Inside the layers", "What individual feature maps respond to, and how far a pixel's decision looks."),
    ("uncertainty", "Uncertainty", "How sure the model is of each colour."),
    ("ablation", "Ablation", "Switch one path off and see which colour disappears."),
)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f6f6f4;color:#222;line-height:1.45}
header{background:#222;color:#eee;padding:14px 24px}
header h1{margin:0;font-size:1.35em}
header p{margin:4px 0 0;color:#bbb;font-size:.9em}
main{max-width:1700px;margin:0 auto;padding:8px 24px 40px}
section{margin-top:22px}
h2{font-size:1.15em;border-bottom:1px solid #ccc;padding-bottom:3px}
figure{margin:12px 0 20px;background:#fff;border:1px solid #ddd;border-radius:4px;padding:10px}
figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:.9em;color:#333;margin-top:8px;max-width:1100px}
.note{background:#fff6d8;border:1px solid #e8d58a;padding:8px 12px;border-radius:4px;max-width:1100px}
table{border-collapse:collapse;font-size:.88em;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#eee}
code{background:#eee;padding:0 3px;border-radius:3px}
"""


def _atomic_text(path: Path, text: str) -> None:
    atomic_write_text(path, text, error=None)


def _table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def write_report(
    out_dir: Path,
    figures: Sequence[FigureInfo],
    *,
    title: str,
    subtitle: str,
    notes: dict[str, list[str]] | None = None,
    facts: Sequence[tuple[str, str]] = (),
    data: dict[str, Any] | None = None,
) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/report.json``; returns the HTML path.

    ``notes`` maps a section id to paragraphs shown before its figures (e.g. "this is a regression
    model"); ``facts`` is the "about this report" table.
    """
    from PIL import Image

    notes = notes or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header><main>",
    ]
    fig_json = []
    for sid, heading, intro in SECTIONS:
        figs = [f for f in figures if f.section == sid]
        if not figs and not notes.get(sid):
            continue
        parts.append(f'<section id="{sid}"><h2>{html.escape(heading)}</h2>')
        if intro:
            parts.append(f"<p>{html.escape(intro)}</p>")
        for n in notes.get(sid, []):
            parts.append(f'<p class="note">{html.escape(n)}</p>')
        for f in figs:
            try:
                with Image.open(out_dir / f.file) as im:
                    w, h = im.size
                size = f' width="{w}" height="{h}"'
            except OSError:
                size = ""
            parts.append(
                f'<figure id="fig-{html.escape(f.id)}"><img src="{html.escape(f.file)}" alt="{html.escape(f.title)}"{size}>'
                f"<figcaption><b>{html.escape(f.title)}.</b> {html.escape(f.caption)}</figcaption></figure>"
            )
            fig_json.append({"id": f.id, "file": f.file, "title": f.title, "caption": f.caption, "section": f.section})
        parts.append("</section>")
    if facts:
        parts.append('<section id="about"><h2>About this report</h2>' + _table(facts) + "</section>")
    parts.append("</main></body></html>")
    index = out_dir / "index.html"
    _atomic_text(index, "\n".join(parts) + "\n")
    payload = {"format": "lumachrome-explain", "format_version": 1, "title": title, "figures": fig_json,
               "notes": notes, **(data or {})}
    _atomic_text(out_dir / "report.json", json.dumps(payload, indent=1, default=_json_default) + "\n")
    return index


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
