"""Opening a stranger's image safely: the one door every image file goes through.

- Only an allow-list of formats is opened (`ALLOWED_FORMATS`). PIL otherwise picks a
  decoder by the file's content, so a PostScript file named `.png` would be handed to
  Ghostscript where it is installed.
- The pixel count is checked from the header, before anything is decoded.
- JPEGs decode at a reduced scale when the target is small (`Image.draft`), and every
  image goes straight to the target size as uint8: no float copy of a full-size photo.
- 16- and 32-bit images (scientific PNGs and TIFFs) are scaled by their range, not clipped
  (clipping turned them white).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from tlcore.core.messages import LearnerError, Reason

ALLOWED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
# the file names the studio looks at, in folders and in zips alike (the content decides the format)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_PIXELS = 40_000_000  # one image, width x height; larger ones are refused before decoding


class ImageRefused(LearnerError):
    """This file is not an image the studio opens; `str(error)` says why in a few words (in
    English; `error.reason` is the same, translatable) and `kind` is "format", "pixels" or
    "broken"."""

    def __init__(self, kind: str, *, key: str = "", **values):
        key = key or f"image.{kind}"
        super().__init__(key, **values)
        self.kind = kind
        self.reason = Reason(key, **values)


def open_image(source: bytes | str | Path | BinaryIO, *, max_pixels: int = MAX_PIXELS):
    """A PIL image of an allowed format and size, read from its header (not yet decoded)."""
    from PIL import Image, UnidentifiedImageError

    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        image = Image.open(fp, formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        raise ImageRefused("format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # PIL's own guard fires inside Image.open, from the header, before the check below can:
        # past twice its limit always, past its limit where warnings are errors. Its limit is
        # far above ours, so this is the same refusal; only the pixel count is in its message.
        raise ImageRefused("pixels", key="image.pixels_claimed", pixels=_claimed_pixels(error), limit=f"{max_pixels:,}") from None
    except (OSError, ValueError) as error:
        raise ImageRefused("broken", error=type(error).__name__) from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageRefused("pixels", width=width, height=height, limit=f"{max_pixels:,}")
    return image


def _claimed_pixels(error: Exception) -> str:
    """'10,000,000,000' from PIL's 'Image size (10000000000 pixels) exceeds limit of ...'."""
    from PIL import Image

    found = re.search(r"\((\d+) pixels\)", str(error))
    return f"{int(found[1]):,}" if found else f"> {Image.MAX_IMAGE_PIXELS or 0:,}"


def to_uint8(image, size: int) -> torch.Tensor:
    """A PIL image -> (3, size, size) uint8: upright (EXIF), RGB, centre-cropped square, resized."""
    from PIL import Image, ImageOps

    if image.format == "JPEG":
        image.draft("RGB", (size, size))  # decode at 1/2, 1/4 or 1/8 scale when that is still >= size
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = Image.fromarray(_to_8bit(np.asarray(image)))
    image = ImageOps.fit(image.convert("RGB"), (size, size))
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


def to_rgb(image, max_side: int = 1024) -> np.ndarray:
    """A PIL image -> (H, W, 3) uint8 to show and classify whole (no crop): upright, 16/32-bit
    scaled like `to_uint8`, and at most max_side pixels a side (JPEGs decode reduced)."""
    from PIL import Image, ImageOps

    if image.format == "JPEG":
        image.draft("RGB", (max_side, max_side))
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = Image.fromarray(_to_8bit(np.asarray(image)))
    image = image.convert("RGB")
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    return np.asarray(image, dtype=np.uint8)


def _to_8bit(values: np.ndarray) -> np.ndarray:
    """Greyscale of more than 8 bits -> 0..255 by its range: 16-bit integers /257, floats in
    0..1 x255, anything else stretched from its minimum to its maximum."""
    floating = np.issubdtype(values.dtype, np.floating)
    values = values.astype(np.float64)
    if values.size == 0:
        return values.astype(np.uint8)
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0 and hi <= 255 and not (floating and hi <= 1.0):
        scaled = values  # already 8-bit values
    elif floating and lo >= 0 and hi <= 1.0:
        scaled = values * 255.0
    elif not floating and lo >= 0 and hi <= 65535:
        scaled = values / 257.0
    else:
        scaled = (values - lo) / max(hi - lo, 1e-12) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def decode(source: bytes | str | Path | BinaryIO, size: int, *, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """Open (allowed format, capped pixels), decode and resize: (3, size, size) uint8.
    Raises ImageRefused with a short reason for anything else, broken files included."""
    image = open_image(source, max_pixels=max_pixels)
    try:
        with image:
            return to_uint8(image, size)
    except ImageRefused:
        raise
    except Exception as error:  # noqa: BLE001 -- PIL raises many types for broken files
        raise ImageRefused("broken", error=type(error).__name__) from None
