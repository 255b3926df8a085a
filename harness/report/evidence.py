"""The evidence a test leaves in its report, rendered for a reader: the wire trace as a table
(time, direction, decoded frame, hex beside it), the printed tape as a receipt image (PNG), and
the register's response time to every driver command (count, median, max)."""

from __future__ import annotations

import html
import io
import json
import statistics
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from ..trace import Timing, TraceRecord

#: Monospace fonts with Cyrillic (Debian: fonts-dejavu-core, fonts-liberation, fonts-noto-mono).
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationMono-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeMono.ttf",
)
NO_FONT = "нет моноширинного шрифта с кириллицей (Debian: apt-get install fonts-dejavu-core)"
DIRECTIONS = {"TX": "→ ККТ", "RX": "← ККТ", "--": "примечание"}
TAPE_WIDTH = 48  # characters: wider lines are wrapped, as a printer would

_TABLE_STYLE = (
    "body{font:13px/1.35 sans-serif;margin:0}table{border-collapse:collapse;width:100%}"
    "th,td{border-bottom:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3;position:sticky;top:0}td.t{white-space:nowrap;color:#666}"
    "td.hex{font-family:monospace;word-break:break-all;color:#555}td.d{font-family:monospace}"
    "tr.TX td.dir{color:#0b5394}tr.RX td.dir{color:#38761d}tr.note td{color:#a61c00;font-style:italic}"
)


def trace_table(records: Sequence[TraceRecord], *, dropped: int = 0) -> str:
    """The wire trace as a self-contained HTML table (the decoded frame, its hex beside it)."""
    rows = []
    if dropped:
        rows.append(f'<tr class="note"><td colspan="4">… {dropped} более ранних записей отброшено …</td></tr>')
    for rec in records:
        kind = "note" if rec.direction == "--" else rec.direction
        rows.append(
            f'<tr class="{kind}"><td class="t">+{rec.t:.6f}</td><td class="dir">{DIRECTIONS.get(rec.direction, "")}'
            f'</td><td class="d">{html.escape(rec.decoded)}</td><td class="hex">{rec.raw.hex(" ").upper()}</td></tr>'
        )
    if not records:
        rows.append('<tr class="note"><td colspan="4">(обмена не было)</td></tr>')
    return (
        f'<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8"><style>{_TABLE_STYLE}</style></head><body>'
        "<table><thead><tr><th>время, с</th><th>направление</th><th>кадр (расшифровка)</th><th>hex</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table></body></html>"
    )


def latency(timings: Iterable[Timing]) -> dict[str, dict[str, object]]:
    """Per command: count, median and max response time in ms, and the samples (answers only:
    a link failure is not a response time)."""
    samples: dict[str, list[float]] = {}
    for timing in timings:
        if timing.answered:
            samples.setdefault(timing.command, []).append(round(timing.seconds * 1000, 3))
    return {
        command: {
            "count": len(values),
            "median_ms": round(statistics.median(values), 3),
            "max_ms": max(values),
            "samples_ms": values,
        }
        for command, values in sorted(samples.items())
    }


def latency_json(timings: Iterable[Timing]) -> str:
    return json.dumps(latency(timings), ensure_ascii=False, indent=1)


@lru_cache(maxsize=1)
def _font_path() -> str | None:
    return next((path for path in FONT_CANDIDATES if Path(path).is_file()), None)


def _wrapped(lines: Iterable[str], width: int) -> list[str]:
    out: list[str] = []
    for line in lines:
        line = line.expandtabs(4).rstrip()
        while len(line) > width:
            out.append(line[:width])
            line = line[width:]
        out.append(line)
    return out


def tape_png(lines: Sequence[str], *, width: int = TAPE_WIDTH, size: int = 15) -> bytes:
    """The printed tape as a receipt: black text on a paper-white strip with a torn edge.
    Raises LookupError (:data:`NO_FONT`) when no monospace font with Cyrillic is installed."""
    from PIL import Image, ImageDraw, ImageFont

    path = _font_path()
    if path is None:
        raise LookupError(NO_FONT)
    font = ImageFont.truetype(path, size)
    text = _wrapped(lines, width) or ["(ничего не напечатано)"]
    left, top, right, bottom = font.getbbox("Ш" * width)
    line_height = int((bottom - top) * 1.35) + 1
    margin = 18
    image_width = int(right - left) + 2 * margin
    image_height = line_height * len(text) + 2 * margin
    image = Image.new("L", (image_width, image_height), 250)
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(text):
        draw.text((margin, margin + index * line_height), line, font=font, fill=20)
    for x in range(0, image_width, 12):  # the torn edges of the strip
        draw.polygon([(x, 0), (x + 6, 5), (x + 12, 0)], fill=255)
        draw.polygon([(x, image_height), (x + 6, image_height - 5), (x + 12, image_height)], fill=255)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
