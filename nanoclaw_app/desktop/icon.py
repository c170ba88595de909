"""The tray icon's picture: the app's orange "N" tile (as in the page header), with a dot when something is up."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

SIZE = 64
ACCENT = (217, 72, 15, 255)  # --accent in ui/static/app.css
WHITE = (255, 255, 255, 255)
DOTS = {"attention": (255, 193, 7, 255), "paused": (152, 162, 179, 255)}


def tray_image(state: str = "running") -> Image:
    """The icon for a :class:`~nanoclaw_app.desktop.status.Status` state (drawn, so no font or file is needed)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    image = PILImage.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((2, 2, SIZE - 3, SIZE - 3), radius=14, fill=ACCENT)
    left, right, top, bottom, stroke = 17, 47, 15, 49, 9
    draw.rectangle((left, top, left + stroke, bottom), fill=WHITE)
    draw.rectangle((right - stroke, top, right, bottom), fill=WHITE)
    draw.polygon([(left, top), (left + stroke + 2, top), (right, bottom), (right - stroke - 2, bottom)], fill=WHITE)
    dot = DOTS.get(state)
    if dot is not None:
        draw.ellipse((SIZE - 26, 0, SIZE - 1, 25), fill=dot, outline=(28, 36, 48, 255), width=3)
    return image
