"""Safe `next` redirects: only paths on this site, never another host or scheme."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

# Enough to unwrap any layering a link could plausibly carry; more layers are refused outright.
_DECODE_ROUNDS = 3


def safe_next(target: str | None, default: str) -> str:
    """`target` if it is a path on this site, else `default`.

    The percent-decoded forms are checked too: a proxy, a framework or a browser that decodes once more
    than expected must not turn `/%2F%2Fevil.example` or `/%5Cevil.example` into another host.
    """
    if not target:
        return default
    target = target.strip()
    candidate = target
    for _ in range(_DECODE_ROUNDS + 1):
        if not _on_site(candidate):
            return default
        decoded = unquote(candidate)
        if decoded == candidate:
            return target
        candidate = decoded
    return default


def _on_site(target: str) -> bool:
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return False
    # Browsers drop tabs and newlines inside URLs ("/\t/evil" becomes "//evil"); refuse every control
    # character and every space but the plain one.
    return not any(ord(ch) < 32 or ord(ch) == 127 or (ch.isspace() and ch != " ") for ch in target)
