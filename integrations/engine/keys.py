"""Match keys: how two systems' spellings of one customer, project or person are recognised as the same.

Pure Python, no Django. Each function turns a value into the form both sides are compared in, or ""
when the value cannot identify anything (blank, or nothing left after normalising).
"""

from __future__ import annotations

import re
import unicodedata

# Legal forms dropped from the end of a company name: "Piper Health Ltd." and "Piper Health" are one firm.
LEGAL_FORMS = {
    "ab",
    "ag",
    "as",
    "bv",
    "co",
    "company",
    "corp",
    "corporation",
    "gmbh",
    "inc",
    "incorporated",
    "kg",
    "limited",
    "llc",
    "llp",
    "lp",
    "ltd",
    "nv",
    "oy",
    "plc",
    "pty",
    "sa",
    "sarl",
    "sas",
    "spa",
    "srl",
}
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def name_key(value) -> str:
    """ "Piper Health, Ltd." -> "piper health"; accents folded, "&" read as "and", legal forms dropped."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode().casefold()
    words = _NOT_WORD.sub(" ", text.replace("&", " and ")).split()
    while len(words) > 1 and words[-1] in LEGAL_FORMS:
        words.pop()
    return " ".join(words)


def domain_key(value) -> str:
    """ "https://www.Acme.example/about" -> "acme.example"; an email address gives its domain."""
    if value is None:
        return ""
    text = str(value).strip().casefold()
    if "@" in text and "/" not in text:
        text = text.rsplit("@", 1)[1]
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].split(":", 1)[0]
    text = text.removeprefix("www.").strip(".")
    return text if "." in text else ""


def code_key(value) -> str:
    """ " prj-104 " -> "PRJ-104": codes compare trimmed and in upper case."""
    return "" if value is None else str(value).strip().upper()


def email_key(value) -> str:
    text = "" if value is None else str(value).strip().casefold()
    return text if "@" in text else ""


NORMALISERS = {"name": name_key, "domain": domain_key, "code": code_key, "email": email_key}
