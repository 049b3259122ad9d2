"""Upload files made on the spot: real images, and the tricks a brand editor must refuse."""

from __future__ import annotations

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

SVG_WITH_SCRIPT = b"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" onload="alert(document.cookie)">
  <script type="text/javascript">fetch('/partner/team/').then(r => r.text()).then(alert)</script>
  <rect width="64" height="64" fill="#0F766E"/>
</svg>
"""


def image_bytes(format: str = "PNG", size=(240, 80), colour="#0F766E") -> bytes:
    out = io.BytesIO()
    mode = "RGB" if format in {"JPEG", "GIF"} else "RGBA"
    Image.new(mode, size, colour).save(out, format=format)
    return out.getvalue()


def upload(name: str, content: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def noisy_png(size=(1200, 1200)) -> bytes:
    """A PNG that does not compress: random pixels, so its byte size is large."""
    import os

    raw = os.urandom(size[0] * size[1] * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", size, raw).save(out, format="PNG")
    return out.getvalue()
