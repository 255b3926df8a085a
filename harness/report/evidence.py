"""The evidence a test leaves in its report, rendered for a reader: the wire trace as a table
(CSV: time, direction, decoded frame, hex beside it), the printed tape as a receipt image (PNG), and
the register's response time to every driver command (count, median, max)."""

from __future__ import annotations

import csv
import io
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

TRACE_HEADER = ("время, с", "направление", "кадр (расшифровка)", "hex")
LATENCY_HEADER = ("команда", "ответов", "медиана, мс", "максимум, мс", "замеры, мс")


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV, which the report shows as a table in the page itself (searchable, unlike HTML,
    which it puts in a fixed-height frame)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def trace_table(records: Sequence[TraceRecord], *, dropped: int = 0) -> str:
    """The wire trace as a table: time, direction, the decoded frame, its hex beside it."""
    rows: list[tuple[str, ...]] = []
    if dropped:
        rows.append(("", DIRECTIONS["--"], f"… {dropped} более ранних записей отброшено …", ""))
    for rec in records:
        rows.append((f"+{rec.t:.6f}", DIRECTIONS.get(rec.direction, ""), rec.decoded, rec.raw.hex(" ").upper()))
    if not records:
        rows.append(("", DIRECTIONS["--"], "(обмена не было)", ""))
    return _csv(TRACE_HEADER, rows)


def latency(timings: Iterable[Timing]) -> dict[str, list[float]]:
    """Per command, its response times in ms (answers only: a link failure is not a response
    time), commands sorted."""
    samples: dict[str, list[float]] = {}
    for timing in timings:
        if timing.answered:
            samples.setdefault(timing.command, []).append(round(timing.seconds * 1000, 3))
    return dict(sorted(samples.items()))


def latency_table(timings: Iterable[Timing]) -> str:
    """Per command: answers, median, max, and every sample (what ``kkt-hil compare`` reads)."""
    rows = [
        (
            command,
            len(values),
            f"{statistics.median(values):g}",
            f"{max(values):g}",
            " ".join(f"{v:g}" for v in values),
        )
        for command, values in latency(timings).items()
    ]
    return _csv(LATENCY_HEADER, rows)


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
