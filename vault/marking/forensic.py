"""Invisible forensic mark: a 48-bit view id hidden in the luma of a page image, read back blind.

A photo, screenshot or re-saved copy of a viewed page loses every piece of metadata, so the id of the
view that produced it is also written into the pixels themselves. The mark survives what such copies
go through (JPEG q75, WebP q80, a 50 % or 80 % rescale, cropping 10 % off each side) and is read back
with nothing but the key: no original image, no database of marked pages.

Format (version 2; version 1 differs only where noted)::

    key       = HMAC-SHA256(secret, "vault/marking/forensic/v1")
    payload   = E(view_id) as 6 bytes, big-endian (0 <= view_id < 2**48), E a keyed permutation of
                48-bit numbers: an 8-round Feistel network on 24-bit halves whose round function is
                HMAC-SHA256(HMAC-SHA256(key, "id-v2"), round (1 byte) || half (3 bytes))[:3]
                (version 1: the view id itself)
    codeword  = Reed-Solomon(payload), 8 parity bytes over GF(2**8)    (reedsolo RSCodec(8): 14 bytes,
                                                                         up to 4 byte errors correctable)
    mask      = HMAC-SHA256(key, "mask-v2")[:14]                        (version 1: "mask")
    bits      = codeword XOR mask, 112 bits, most significant bit of byte 0 first
    tile      = 14 rows x 8 columns of cells; cell (r, c) carries bit 8*r + c, so one tile row is one byte
    block     = N x N pixels (N = 16); the page is cut into blocks from its top-left corner and block
                (by, bx) is cell (by mod 14, bx mod 8): the tile repeats over the whole page
    P         = sum of s_k * B_k over the 2-D DCT-II basis functions B_k of an N x N block with
                (u, v) in (2, 3), (3, 2), (1, 4), (4, 1); s_k = +-1 from the bits of
                HMAC-SHA256(key, "pattern")[0]; scaled to unit energy (sum of P**2 = 1)
    delta     = sign * ALPHA * P in each block, sign = +1 for a 1 bit and -1 for a 0 bit;
                ALPHA is chosen so that the largest |delta| is PEAK = 8 grey levels
    marked    = clip(round(pixel + delta), 0, 255), the same delta on R, G and B, so only luma moves
    overlay   = for vector PDF pages, which can only be darkened: black drawn with alpha
                clip(round(OVERLAY_TINT - delta), 0, 255) / 255 over the page, OVERLAY_TINT = 4
                (see :func:`tile_alpha_overlay`), one overlay pixel per pixel of a NOMINAL_WIDTH render

Why PEAK is 8: at 4 and 6 JPEG q75 and WebP q80 of white text pages lost too many bits; at 8 every
tested attack decodes (PSNR about 43.6 dB on a white text page, where clipping keeps only the darker
half of the pattern, so white paper moves by 0 to -8 levels).

Why each part is there: all four basis functions are mid frequencies, which JPEG and WebP keep at
quality 75 and which a 2x downscale still resolves at N = 16; low frequencies would show as blotches
and high ones are the first thing lossy coding drops. Changing luma only survives pure white paper,
where a chroma change would need a channel above 255 (on white only the negative lobes of P survive
the clipping, which halves the signal but still decodes). The keyed mask makes an all-zero or all-one
read (a blank page, a page without a mark) an invalid codeword. The keyed permutation is what keeps an
insider from framing someone: the pattern has only 16 possible sign choices and Reed-Solomon is linear,
so in version 1 one marked copy of one's own view, whose id its visible stamp shows, gave away the mask
and with it the mark of any other view id (forge a colleague's view onto a leaked page). In version 2 that
copy gives away at most E(own id), and the mark of another view needs E(its id), which only the secret
yields; a word made from one's own copy decodes to an unpredictable id, almost surely no view's. Repeating a small tile
gives every bit about 75 blocks on a 1240 x 1754 page, so text covering some of them costs nothing,
and it makes the decoder's search over tile positions its own synchronisation for crops.

Decoding::

    luma      = 0.299 R + 0.587 G + 0.114 B
    C(y, x)   = correlation of luma with P for the block whose top-left pixel is (y, x) (one FFT)
    value     = clip(C, +-2.5 ALPHA) / (1 + var / (4 var_P))   (var: the block's own luma variance, so
                text blocks, which carry the most noise, are muted; var_P: the variance of delta)
    for each of the N*N pixel offsets: sum the values of its blocks into a 14 x 8 tile; keep the
    3 offsets with the most energy; for each, try the 112 cyclic shifts of the tile (where the page
    started after a crop), read signs, XOR the mask of version 2, then of version 1, and
    Reed-Solomon decode; a version 2 payload is put through E's inverse.

Version 1 marks (every copy made before version 2) are still read, and reported as such
(:class:`Mark` ``legacy``): anyone who held a version 1 copy can forge one, so such a read is a lead,
not proof.

The decoder tries the image as it is and, when its width differs, resized to the nominal render width
(1240 px), which undoes a proportional rescale. A result is accepted only if Reed-Solomon decodes it
with at most MAX_CORRECTIONS = 2 byte corrections and the best offset's energy stands clearly above the
median over all offsets. A random 14-byte word lies within 2 byte errors of some codeword with
probability about 91 * 255**2 / 256**8 = 3e-13; over the 672 candidates of one decode (2 sizes x 3
offsets x 112 shifts x 2 versions) that is below 1e-9, and the energy test rejects most noise before Reed-Solomon
runs. A wrong key, an unmarked page or noise therefore gives None, never another id.

Limits: the pattern repeats, so someone holding many marked copies could estimate and subtract it.
The mark is a leak-tracing aid, not a tamper-proof seal. A crop combined with a rescale is not
recovered (it would need a scale search), nor is a crop of more than about 25 % per side.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops
from reedsolo import ReedSolomonError, RSCodec

from vault.marking.errors import MarkingError

VERSION_LABEL = b"vault/marking/forensic/v1"
"""The label the marking key is derived under, in both versions (it names the key, not the format)."""
FEISTEL_ROUNDS = 8
_HALF_BITS = 24
_HALF_MASK = (1 << _HALF_BITS) - 1
ID_BITS = 48
ID_BYTES = ID_BITS // 8
PARITY_BYTES = 8
CODEWORD_BYTES = ID_BYTES + PARITY_BYTES
TILE_ROWS = CODEWORD_BYTES  # one byte per tile row
TILE_COLS = 8
BLOCK = 16
PEAK = 8.0
NOMINAL_WIDTH = 1240
"""Width in pixels at which pages are rendered for viewing (A4 at 150 dpi), and at which marks are read."""
MAX_CORRECTIONS = 2
MAX_ASIS_PIXELS = 4 * NOMINAL_WIDTH * 1754
"""Largest image decoded at its own size: four nominal A4 pages' worth (the work grows with the area)."""
ENERGY_RATIO = 6.0
"""The best pixel offset's tile energy must be this many times the median offset's (measured: a marked
text page after every tested attack stays above 11, unmarked text pages below 3, noise below 1.5; a
wrong key's pattern still shares basis functions with the right one and reaches about 6.5, which is
why Reed-Solomon, not this ratio, is the test that rejects a wrong key)."""
_OFFSETS_TRIED = 3
_CLIP = 2.5
_BASIS = ((2, 3), (3, 2), (1, 4), (4, 1))
_RS = RSCodec(PARITY_BYTES)


class ForensicError(MarkingError):
    """The view id or the image cannot be marked (id out of range, image too small or of no known mode)."""


@dataclass(frozen=True)
class Mark:
    """A mark read from an image: the view id, and whether it is in the forgeable version 1 format."""

    view_id: int
    legacy: bool


@dataclass(frozen=True)
class _Keyed:
    mask: np.ndarray  # 112 bits, 0/1 (version 2)
    mask_v1: np.ndarray  # 112 bits, 0/1 (version 1, read only)
    id_key: bytes  # the key of the view id permutation E (version 2)
    pattern: np.ndarray  # BLOCK x BLOCK float, unit energy
    alpha: float


def _round(id_key: bytes, number: int, half: int) -> int:
    digest = hmac.new(id_key, bytes([number]) + half.to_bytes(3, "big"), hashlib.sha256).digest()
    return int.from_bytes(digest[:3], "big")


def _permute(id_key: bytes, view_id: int) -> int:
    """E(view_id): the keyed permutation of 48-bit numbers (Feistel, see the module docstring)."""
    left, right = view_id >> _HALF_BITS, view_id & _HALF_MASK
    for number in range(FEISTEL_ROUNDS):
        left, right = right, left ^ _round(id_key, number, right)
    return (left << _HALF_BITS) | right


def _unpermute(id_key: bytes, payload: int) -> int:
    """E's inverse."""
    left, right = payload >> _HALF_BITS, payload & _HALF_MASK
    for number in reversed(range(FEISTEL_ROUNDS)):
        left, right = right ^ _round(id_key, number, left), left
    return (left << _HALF_BITS) | right


@functools.lru_cache(maxsize=8)
def _keyed(secret: bytes) -> _Keyed:
    key = hmac.new(secret, VERSION_LABEL, hashlib.sha256).digest()
    mask_bytes = hmac.new(key, b"mask-v2", hashlib.sha256).digest()[:CODEWORD_BYTES]
    mask_v1_bytes = hmac.new(key, b"mask", hashlib.sha256).digest()[:CODEWORD_BYTES]
    id_key = hmac.new(key, b"id-v2", hashlib.sha256).digest()
    signs_byte = hmac.new(key, b"pattern", hashlib.sha256).digest()[0]
    n = BLOCK
    idx = np.arange(n)
    pattern = np.zeros((n, n))
    for k, (u, v) in enumerate(_BASIS):
        sign = 1.0 if (signs_byte >> k) & 1 else -1.0
        rows = np.cos(np.pi * (2 * idx + 1) * u / (2 * n))
        cols = np.cos(np.pi * (2 * idx + 1) * v / (2 * n))
        pattern += sign * np.outer(rows, cols)
    pattern /= np.sqrt((pattern**2).sum())
    alpha = PEAK / float(np.abs(pattern).max())
    mask = np.unpackbits(np.frombuffer(mask_bytes, dtype=np.uint8))
    mask_v1 = np.unpackbits(np.frombuffer(mask_v1_bytes, dtype=np.uint8))
    return _Keyed(mask=mask, mask_v1=mask_v1, id_key=id_key, pattern=pattern, alpha=alpha)


def _check_id(view_id: int) -> None:
    if not isinstance(view_id, int) or isinstance(view_id, bool) or not 0 <= view_id < 1 << ID_BITS:
        raise ForensicError(f"view id must be an integer in [0, 2**{ID_BITS})")


@functools.lru_cache(maxsize=16)
def _tile_delta(secret: bytes, view_id: int) -> np.ndarray:
    """The luma change for one tile (224 x 128 pixels), as float32."""
    keyed = _keyed(secret)
    return _tile_of_word(keyed, _permute(keyed.id_key, view_id), keyed.mask)


def _tile_of_word(keyed: _Keyed, payload: int, mask: np.ndarray) -> np.ndarray:
    """The luma change of one tile carrying ``payload`` under ``mask`` (either version's)."""
    codeword = bytes(_RS.encode(payload.to_bytes(ID_BYTES, "big")))
    bits = np.unpackbits(np.frombuffer(codeword, dtype=np.uint8)) ^ mask
    signs = (bits.astype(np.float64) * 2 - 1).reshape(TILE_ROWS, TILE_COLS)
    tile = np.kron(signs, keyed.alpha * keyed.pattern)
    return tile.astype(np.float32)


def embed(image: Image.Image, view_id: int, secret: bytes) -> Image.Image:
    """Return a copy of ``image`` (converted to RGB) carrying ``view_id`` invisibly.

    Args:
        image: the page as rendered for viewing, ideally NOMINAL_WIDTH wide.
        view_id: the view to record, 0 <= view_id < 2**48.
        secret: the marking secret; the same bytes are needed to read the mark.

    Raises:
        ForensicError: the id is out of range or the image is smaller than one tile.
    """
    _check_id(view_id)
    rgb = image.convert("RGB")
    width, height = rgb.size
    tile = _tile_delta(bytes(secret), view_id)
    if width < tile.shape[1] or height < tile.shape[0]:
        raise ForensicError(f"image {width}x{height} is smaller than one mark tile")
    # Pixels are integers, so rint(pixel + delta) is pixel + rint(delta): the rounded delta of a page size is
    # computed once per view and added in 16-bit integers, several times faster than in floating point.
    pixels = np.asarray(rgb, dtype=np.int16) + _page_delta(bytes(secret), view_id, height, width)[:, :, None]
    np.clip(pixels, 0, 255, out=pixels)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


@functools.lru_cache(maxsize=8)
def _page_delta(secret: bytes, view_id: int, height: int, width: int) -> np.ndarray:
    """The rounded luma change for a whole page of this size, as int8 (2 MiB for an A4 page).

    Kept per view, so each page of a view reuses it; eight of them are a worker's largest cache, and
    int8 holds every value (|delta| <= PEAK) in half the memory int16 took (added to int16 pixels,
    numpy widens it on the fly).
    """
    tile = _tile_delta(secret, view_id)
    reps = (-(-height // tile.shape[0]), -(-width // tile.shape[1]))
    return np.rint(np.tile(tile, reps)[:height, :width]).astype(np.int8)


def embed_grey(image: Image.Image, view_id: int, secret: bytes) -> Image.Image:
    """Return a greyscale (``L``) ``image`` carrying ``view_id``: the same pixels :func:`embed` gives its
    luma, in one pass of C (``ImageChops.add``) over a per-view cached image of the delta.

    Raises:
        ForensicError: the id is out of range, the image is not ``L`` or smaller than one tile.
    """
    _check_id(view_id)
    if image.mode != "L":
        raise ForensicError("embed_grey needs an L image")
    width, height = image.size
    if width < TILE_COLS * BLOCK or height < TILE_ROWS * BLOCK:
        raise ForensicError(f"image {width}x{height} is smaller than one mark tile")
    shifted = _page_delta_image(bytes(secret), view_id, height, width)
    # clip(pixel + (delta + PEAK) - PEAK, 0, 255): the shifted delta is unsigned, one saturating add.
    return ImageChops.add(image, shifted, 1.0, -int(PEAK))


@functools.lru_cache(maxsize=8)
def _page_delta_image(secret: bytes, view_id: int, height: int, width: int) -> Image.Image:
    """The rounded luma change of a page, shifted by PEAK into 0..2*PEAK, as an ``L`` image (2 MiB for
    A4): built once per view and page size, shared by every page of the view; never modified."""
    # Rounding commutes with tiling: round and shift one tile, then tile bytes (no page-sized floats).
    tile = (np.rint(_tile_delta(secret, view_id)) + PEAK).astype(np.uint8)
    reps = (-(-height // tile.shape[0]), -(-width // tile.shape[1]))
    return Image.fromarray(np.ascontiguousarray(np.tile(tile, reps)[:height, :width]), "L")


OVERLAY_TINT = 4.0
"""Grey levels by which the PDF overlay darkens white paper on average (see :func:`tile_alpha_overlay`)."""


def tile_alpha_overlay(secret: bytes, view_id: int) -> Image.Image:
    """One tile of the mark as an ``L`` image of darkening (0 = none), for drawing over vector pages.

    A PDF overlay can only darken, so on its own it would keep just the negative lobes of the pattern,
    as :func:`embed` does on white paper, and WebP q80 of such a render loses too much. Shifting the
    pattern down by OVERLAY_TINT keeps most of the positive lobes too, at the cost of a uniform tint of
    about 1.5 % grey, which reads as paper colour rather than as a pattern.
    """
    _check_id(view_id)
    tile = _tile_delta(bytes(secret), view_id)
    return Image.fromarray(np.clip(np.rint(OVERLAY_TINT - tile), 0, 255).astype(np.uint8), "L")


def _luma(image: Image.Image) -> np.ndarray:
    if image.mode in ("L", "I;16", "I", "F"):
        return np.asarray(image.convert("F"), dtype=np.float64)
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    return rgb @ np.array([0.299, 0.587, 0.114])


def _fast_length(size: int) -> int:
    """The smallest 2**a * 3**b * 5**c >= size: FFTs of such lengths are several times faster."""
    best = 1 << (size - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            candidate = p35 * (1 << max(0, (-(-size // p35) - 1).bit_length()))
            best = min(best, candidate)
            p35 *= 3
        p5 *= 5
    return best


def _correlate(luma: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """C[y, x] = sum(luma[y:y+N, x:x+N] * pattern) for every valid (y, x), through one FFT."""
    n = pattern.shape[0]
    h, w = luma.shape
    fh, fw = _fast_length(h + n - 1), _fast_length(w + n - 1)
    spec = np.fft.rfft2(luma, s=(fh, fw)) * np.conj(np.fft.rfft2(pattern, s=(fh, fw)))
    full = np.fft.irfft2(spec, s=(fh, fw))
    return full[: h - n + 1, : w - n + 1]


def _box_mean(values: np.ndarray, n: int) -> np.ndarray:
    """Mean over every n x n window (valid positions), from an integral image."""
    integral = np.zeros((values.shape[0] + 1, values.shape[1] + 1))
    integral[1:, 1:] = values.cumsum(0).cumsum(1)
    total = integral[n:, n:] - integral[:-n, n:] - integral[n:, :-n] + integral[:-n, :-n]
    return total / (n * n)


def _candidates(luma: np.ndarray, keyed: _Keyed) -> list[np.ndarray]:
    """The tiles of summed block values at the most energetic pixel offsets, best first ([] if no mark)."""
    n = BLOCK
    corr = _correlate(luma, keyed.pattern)
    mean = _box_mean(luma, n)
    var = np.maximum(_box_mean(luma * luma, n) - mean * mean, 0.0)
    var_pattern = keyed.alpha**2 / (n * n)
    values = np.clip(corr, -_CLIP * keyed.alpha, _CLIP * keyed.alpha) / (1.0 + var / (4.0 * var_pattern))
    rows, cols = values.shape[0] // n, values.shape[1] // n
    pad_r, pad_c = -rows % TILE_ROWS, -cols % TILE_COLS
    tiles: list[np.ndarray] = []
    energies = np.empty(n * n)
    for oy in range(n):
        for ox in range(n):
            blocks = values[oy : oy + n * rows : n, ox : ox + n * cols : n][:rows, :cols]
            blocks = np.pad(blocks, ((0, pad_r), (0, pad_c)))
            tile = blocks.reshape(-1, TILE_ROWS, blocks.shape[1] // TILE_COLS, TILE_COLS).sum(axis=(0, 2))
            tiles.append(tile)
            energies[oy * n + ox] = float((tile**2).sum())
    median = float(np.median(energies))
    order = np.argsort(energies)[::-1]
    if median <= 0 or energies[order[0]] < ENERGY_RATIO * median:
        return []
    return [tiles[i] for i in order[:_OFFSETS_TRIED]]


def _read_tile(tile: np.ndarray, keyed: _Keyed) -> tuple[Mark, int] | None:
    """(mark, corrections) of the best tile shift and version, or None when none decodes well enough."""
    best: tuple[Mark, int] | None = None
    for dy in range(TILE_ROWS):
        for dx in range(TILE_COLS):
            raw = (np.roll(tile, (dy, dx), axis=(0, 1)).reshape(-1) > 0).astype(np.uint8)
            for mask, legacy in ((keyed.mask, False), (keyed.mask_v1, True)):
                word = np.packbits(raw ^ mask).tobytes()
                try:
                    message, _, errata = _RS.decode(word)
                except ReedSolomonError:
                    continue
                corrections = len(errata)
                if corrections <= MAX_CORRECTIONS and (best is None or corrections < best[1]):
                    payload = int.from_bytes(bytes(message), "big")
                    view_id = payload if legacy else _unpermute(keyed.id_key, payload)
                    best = (Mark(view_id, legacy), corrections)
                    if corrections == 0:
                        return best
    return best


def decode(image: Image.Image, secret: bytes, *, nominal_width: int = NOMINAL_WIDTH) -> int | None:
    """The view id of :func:`read_mark`, of either version, or None when there is none to read."""
    mark = read_mark(image, secret, nominal_width=nominal_width)
    return None if mark is None else mark.view_id


def read_mark(image: Image.Image, secret: bytes, *, nominal_width: int = NOMINAL_WIDTH) -> Mark | None:
    """Read the mark put into ``image`` by :func:`embed` (or by version 1), or None when there is none.

    Tries the image as it is, then resized to ``nominal_width`` (aspect kept) if its width differs.
    Never returns an id that was not marked with ``secret`` (see the module docstring for the bound).
    """
    keyed = _keyed(bytes(secret))
    width, height = image.size
    attempts = []
    # As it is: the mark's blocks keep their size only in a crop of a page at the nominal width, so a
    # much wider image is not tried as it is (which also bounds the work spent on a huge photo).
    if width <= nominal_width * 1.5 and width * height <= MAX_ASIS_PIXELS:
        attempts.append(image)
    # Resized: only for page-like shapes, so a 1 x 100000 strip cannot ask for a gigapixel resize.
    if width != nominal_width and width > 0 and 0.2 <= height / width <= 5:
        resized_height = max(1, round(height * nominal_width / width))
        attempts.append(image.convert("RGB").resize((nominal_width, resized_height), Image.Resampling.BICUBIC))
    best: tuple[Mark, int] | None = None
    for attempt in attempts:
        if attempt.width < BLOCK * TILE_COLS or attempt.height < BLOCK * TILE_ROWS:
            continue
        for tile in _candidates(_luma(attempt), keyed):
            found = _read_tile(tile, keyed)
            if found is not None and (best is None or found[1] < best[1]):
                best = found
                if found[1] == 0:
                    return found[0]
    return None if best is None else best[0]
