"""The app's icon: the orange "N" tile of the page header and the tray, as an SVG and as PNGs for each hicolor size.

One drawing, kept here as shapes, gives both forms, so the menu icon and the PNG renders never drift apart. The PNGs
are drawn with Pillow (an app dependency) at four times their size and scaled down, which smooths the edges without
an SVG renderer on the build machine. Run it to write the files: ``python installers/linux/icon.py OUT_DIR``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ACCENT = "#d9480f"  # --accent in ui/static/app.css
WHITE = "#ffffff"
VIEW = 512
TILE = (16, 16, 496, 496)  # left, top, right, bottom
RADIUS = 112
# The letter: two upright bars and the diagonal joining the top of the left bar to the foot of the right one.
LEFT, RIGHT, TOP, BOTTOM, STROKE = 136, 376, 120, 392, 72
BARS = ((LEFT, TOP, LEFT + STROKE, BOTTOM), (RIGHT - STROKE, TOP, RIGHT, BOTTOM))
DIAGONAL = ((LEFT, TOP), (LEFT + STROKE + 16, TOP), (RIGHT, BOTTOM), (RIGHT - STROKE - 16, BOTTOM))
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def svg() -> str:
    """The scalable icon."""
    left, top, right, bottom = TILE
    bars = "".join(
        f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}"/>' for x0, y0, x1, y1 in BARS
    )
    points = " ".join(f"{x},{y}" for x, y in DIAGONAL)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{VIEW}" height="{VIEW}" viewBox="0 0 {VIEW} {VIEW}">\n'
        f"  <title>NanoClaw</title>\n"
        f'  <rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" rx="{RADIUS}" fill="{ACCENT}"/>\n'
        f'  <g fill="{WHITE}">{bars}<polygon points="{points}"/></g>\n'
        f"</svg>\n"
    )


def png(size: int) -> bytes:
    """The icon as a ``size`` x ``size`` PNG with a transparent background."""
    import io

    from PIL import Image, ImageDraw

    scale = size * 4 / VIEW
    big = Image.new("RGBA", (size * 4, size * 4), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        return x0 * scale, y0 * scale, x1 * scale - 1, y1 * scale - 1

    draw.rounded_rectangle(box(*TILE), radius=RADIUS * scale, fill=ACCENT)
    for bar in BARS:
        draw.rectangle(box(*bar), fill=WHITE)
    draw.polygon([(x * scale, y * scale) for x, y in DIAGONAL], fill=WHITE)
    out = io.BytesIO()
    big.resize((size, size), Image.Resampling.LANCZOS).save(out, format="PNG", optimize=True)
    return out.getvalue()


def write_hicolor(root: Path, name: str = "nanoclaw") -> list[Path]:
    """Write the icon theme tree under ``root`` (``hicolor/<size>x<size>/apps/`` and ``hicolor/scalable/apps/``)."""
    written = []
    for size in PNG_SIZES:
        path = root / "hicolor" / f"{size}x{size}" / "apps" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png(size))
        written.append(path)
    path = root / "hicolor" / "scalable" / "apps" / f"{name}.svg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg(), encoding="utf-8")
    written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python installers/linux/icon.py OUT_DIR")
    for file in write_hicolor(Path(sys.argv[1])):
        print(file)
