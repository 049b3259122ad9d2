"""Which brand a request or an email carries."""

from __future__ import annotations

import re
from dataclasses import dataclass

from branding.models import Brand, platform_brand

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def brand_for_partner(partner) -> Brand:
    if partner is None:
        return platform_brand()
    try:
        return partner.brand
    except Brand.DoesNotExist:
        return platform_brand()


def brand_for_request(request) -> Brand:
    return brand_for_partner(getattr(request, "partner", None))


def relative_luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance of a #rrggbb colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def readable_ink(background: str) -> str:
    """White or near-black text, whichever reads better on `background`."""
    return "#ffffff" if contrast_ratio(background, "#ffffff") >= contrast_ratio(background, "#111827") else "#111827"


def brand_palette(brand: Brand) -> dict[str, str]:
    """CSS-safe colours of a brand: anything not a validated #rrggbb falls back to the platform's."""
    default = platform_brand()
    primary = brand.primary_color if HEX_COLOUR.match(brand.primary_color or "") else default.primary_color
    accent = brand.accent_color if HEX_COLOUR.match(brand.accent_color or "") else default.accent_color
    return {
        "primary": primary,
        "accent": accent,
        "primary_ink": readable_ink(primary),
        "accent_ink": readable_ink(accent),
    }


WCAG_AA_TEXT = 4.5
WCAG_AA_LARGE_TEXT = 3.0
WHITE = "#ffffff"


@dataclass(frozen=True)
class ContrastCheck:
    """One pairing of text and background the product really draws, judged against WCAG 2.1 AA."""

    label: str
    field: str  # the form field whose colour this pairing judges
    foreground: str
    background: str
    minimum: float  # below this the brand cannot be saved
    target: float = WCAG_AA_TEXT

    @property
    def ratio(self) -> float:
        return contrast_ratio(self.foreground, self.background)

    @property
    def passes(self) -> bool:
        return self.ratio >= self.target

    @property
    def blocking(self) -> bool:
        return self.ratio < self.minimum

    @property
    def ratio_label(self) -> str:
        return f"{self.ratio:.1f}:1"


def darker_shade(colour: str, against: str = WHITE, ratio: float = WCAG_AA_TEXT) -> str:
    """The same hue, darkened just enough to reach `ratio` against `against` (a suggestion to offer)."""
    channels = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    for step in range(100, -1, -2):
        candidate = "#" + "".join(f"{round(c * step / 100):02X}" for c in channels)
        if contrast_ratio(candidate, against) >= ratio:
            return candidate
    return "#000000"


def contrast_checks(primary: str, accent: str) -> list[ContrastCheck]:
    """The pairings the page shell and the emails use, for the brand editor's contrast check."""
    primary_ink, accent_ink = readable_ink(primary), readable_ink(accent)
    return [
        ContrastCheck(
            label="Links and highlights in the primary colour on white",
            field="primary_color",
            foreground=primary,
            background=WHITE,
            minimum=WCAG_AA_TEXT,
        ),
        ContrastCheck(
            label="Button and header text on the primary colour",
            field="primary_color",
            foreground=primary_ink,
            background=primary,
            minimum=WCAG_AA_TEXT,
        ),
        ContrastCheck(
            label="Badge text on the accent colour",
            field="accent_color",
            foreground=accent_ink,
            background=accent,
            minimum=WCAG_AA_LARGE_TEXT,
        ),
    ]
