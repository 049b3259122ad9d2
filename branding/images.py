"""Uploaded brand images: judged by decoding their content with Pillow, never by name or content type.

Only PNG, JPEG and WebP within a byte and a pixel limit are accepted, and what we store and
serve is Pillow's re-encoding of the decoded pixels, not the uploaded bytes: metadata, trailing
payloads and polyglot tricks do not survive. SVG is refused outright, since it can carry script.
"""

from __future__ import annotations

import io
import secrets
import warnings
from dataclasses import dataclass

from django.core.files.base import ContentFile
from PIL import Image, UnidentifiedImageError


def filesizeformat(size: int) -> str:
    """1048576 -> "1 MB", 1468006 -> "1.4 MB", 262144 -> "256 KB" (plain spaces, for messages)."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


ACCEPTED_FORMATS = {"PNG": "png", "JPEG": "jpg", "MPO": "jpg", "WEBP": "webp"}
ACCEPTED_LABEL = "PNG, JPEG or WebP"


@dataclass(frozen=True)
class ImageRules:
    kind: str
    max_bytes: int
    max_pixels: tuple[int, int]
    min_pixels: tuple[int, int] = (16, 16)

    @property
    def help_text(self) -> str:
        width, height = self.max_pixels
        return f"{ACCEPTED_LABEL}, up to {filesizeformat(self.max_bytes)} and {width}×{height} pixels."


LOGO_RULES = ImageRules(kind="logo", max_bytes=1024 * 1024, max_pixels=(2048, 2048))
FAVICON_RULES = ImageRules(kind="favicon", max_bytes=256 * 1024, max_pixels=(512, 512))


class ImageRefused(Exception):  # noqa: N818 - reads as what happened to the upload
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CheckedImage:
    content: bytes  # Pillow's re-encoding
    format: str  # PNG, JPEG or WEBP
    extension: str
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[self.format]

    def as_file(self, stem: str) -> ContentFile:
        return ContentFile(self.content, name=f"{stem}-{secrets.token_hex(4)}.{self.extension}")


def _content_is_svg(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(b"<") and (b"<svg" in text or b"<!doctype svg" in text)


def _name_says_svg(name: str, content_type: str) -> bool:
    return name.lower().endswith((".svg", ".svgz")) or "svg" in content_type.lower()


def _svg_refused(name: str) -> ImageRefused:
    return ImageRefused(
        f"{name} is an SVG image. SVG files can carry scripts, so they are not accepted: export a PNG instead."
    )


def image_check(upload, rules: ImageRules) -> CheckedImage:
    """Decode `upload` (a Django UploadedFile) and return its safe re-encoding, or raise ImageRefused."""
    name = (getattr(upload, "name", "") or "the file")[-80:]
    content_type = getattr(upload, "content_type", "") or ""
    size = getattr(upload, "size", None)
    if size is not None and size > rules.max_bytes:
        raise ImageRefused(
            f"{name} is {filesizeformat(size)}; the {rules.kind} limit is {filesizeformat(rules.max_bytes)}."
            " Export a smaller image."
        )
    upload.seek(0)
    data = upload.read(rules.max_bytes + 1)
    if len(data) > rules.max_bytes:
        raise ImageRefused(f"{name} is larger than the {rules.kind} limit of {filesizeformat(rules.max_bytes)}.")
    if not data:
        raise ImageRefused(f"{name} is empty.")
    if _content_is_svg(data[:4096]):
        raise _svg_refused(name)
    if _name_says_svg(name, content_type):
        # Named or labelled SVG: refused as such unless the content is really a raster image.
        try:
            Image.open(io.BytesIO(data))
        except (UnidentifiedImageError, OSError):
            raise _svg_refused(name) from None
    return _reencode(data, name, rules)


def _reencode(data: bytes, name: str, rules: ImageRules) -> CheckedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            detected = image.format or "unknown"
            width, height = image.size
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError, OSError) as error:
        raise ImageRefused(
            f"{name} is not a {ACCEPTED_LABEL} image: its content could not be read as one, whatever its name says."
        ) from error
    if detected not in ACCEPTED_FORMATS:
        raise ImageRefused(f"{name} is a {detected} image; upload a {ACCEPTED_LABEL} image instead.")
    if detected == "MPO":  # a camera JPEG with extra frames: decoded and kept as its first, plain JPEG
        detected = "JPEG"
    max_width, max_height = rules.max_pixels
    if width > max_width or height > max_height:
        raise ImageRefused(f"{name} is {width}×{height} pixels; the {rules.kind} limit is {max_width}×{max_height}.")
    min_width, min_height = rules.min_pixels
    if width < min_width or height < min_height:
        raise ImageRefused(f"{name} is only {width}×{height} pixels; use at least {min_width}×{min_height}.")
    try:
        Image.open(io.BytesIO(data)).verify()
        image = Image.open(io.BytesIO(data))
        image.load()  # decode every pixel: truncated or corrupt files fail here
    except Exception as error:  # noqa: BLE001 - Pillow raises many kinds for damaged files
        raise ImageRefused(f"{name} looks like a {detected} image but is damaged: it could not be decoded.") from error
    out = io.BytesIO()
    if detected == "JPEG":
        image.convert("RGB").save(out, format="JPEG", quality=90, optimize=True)
    elif detected == "PNG":
        if image.mode not in {"RGB", "RGBA", "L", "LA", "P"}:
            image = image.convert("RGBA")
        image.save(out, format="PNG", optimize=True)
    else:
        image.convert("RGBA").save(out, format="WEBP", quality=90)
    return CheckedImage(
        content=out.getvalue(), format=detected, extension=ACCEPTED_FORMATS[detected], width=width, height=height
    )
