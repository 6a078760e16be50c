"""An insider holding a marked copy of their own view must not be able to mark a page with another view's id.

The attack uses only what such an insider has: their copy, the view id its visible stamp shows, and the
published format (16 possible patterns, a public Reed-Solomon code); never the secret.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from reedsolo import RSCodec

from tests.marking.conftest import SECRET
from vault.marking import forensic, read_mark, trace
from vault.marking.forensic import BLOCK, PEAK, Mark, embed

MINE, COLLEAGUES = 4242, 4243


def _bits(view_id: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes(RSCodec(8).encode(view_id.to_bytes(6, "big"))), dtype=np.uint8))


def _pattern(signs: int) -> np.ndarray:
    idx = np.arange(BLOCK)
    pattern = np.zeros((BLOCK, BLOCK))
    for k, (u, v) in enumerate(((2, 3), (3, 2), (1, 4), (4, 1))):
        sign = 1.0 if (signs >> k) & 1 else -1.0
        pattern += sign * np.outer(np.cos(np.pi * (2 * idx + 1) * u / (2 * BLOCK)),
                                   np.cos(np.pi * (2 * idx + 1) * v / (2 * BLOCK)))
    return pattern / np.sqrt((pattern**2).sum())


def forge(own_copy: Image.Image, own_id: int, target_id: int, page: Image.Image) -> Image.Image:
    """Read the raw tile of one's own copy under each of the 16 patterns, take the mask it implies for
    one's own id, and mark ``page`` with ``target_id`` under that mask."""
    luma = np.asarray(own_copy.convert("RGB"), dtype=np.float64) @ np.array([0.299, 0.587, 0.114])
    best = None
    for signs in range(16):
        pattern = _pattern(signs)
        guess = forensic._Keyed(mask=np.zeros(112, np.uint8), mask_v1=np.zeros(112, np.uint8), id_key=b"",
                                pattern=pattern, alpha=PEAK / float(np.abs(pattern).max()))
        tiles = forensic._candidates(luma, guess)
        if tiles and (best is None or float((tiles[0] ** 2).sum()) > best[0]):
            best = (float((tiles[0] ** 2).sum()), guess, tiles[0])
    assert best is not None
    _, guess, tile = best
    mask = (tile.reshape(-1) > 0).astype(np.uint8) ^ _bits(own_id)
    signs = ((_bits(target_id) ^ mask).astype(np.float64) * 2 - 1).reshape(14, 8)
    delta = np.kron(signs, guess.alpha * guess.pattern)
    rgb = np.asarray(page.convert("RGB"), dtype=np.float64)
    height, width = rgb.shape[:2]
    full = np.tile(delta, (-(-height // delta.shape[0]), -(-width // delta.shape[1])))[:height, :width]
    return Image.fromarray(np.clip(np.rint(rgb + full[:, :, None]), 0, 255).astype(np.uint8), "RGB")


def test_ones_own_copy_does_not_yield_a_colleagues_mark(page: Image.Image) -> None:
    own_copy = embed(page, MINE, SECRET)
    assert read_mark(own_copy, SECRET) == Mark(MINE, legacy=False)
    forged = read_mark(forge(own_copy, MINE, COLLEAGUES, page), SECRET)
    # Before version 2 this read Mark(COLLEAGUES): the colleague was framed.
    assert forged is None or forged.view_id != COLLEAGUES


def legacy_embed(image: Image.Image, view_id: int, secret: bytes) -> Image.Image:
    """A version 1 mark, as every copy made before version 2 carries."""
    keyed = forensic._keyed(secret)
    tile = forensic._tile_of_word(keyed, view_id, keyed.mask_v1)
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    height, width = rgb.shape[:2]
    full = np.rint(np.tile(tile, (-(-height // tile.shape[0]), -(-width // tile.shape[1])))[:height, :width])
    return Image.fromarray(np.clip(rgb + full.astype(np.int16)[:, :, None], 0, 255).astype(np.uint8), "RGB")


def test_a_version_1_mark_is_still_read_and_said_to_be_one(page: Image.Image) -> None:
    old_copy = legacy_embed(page, MINE, SECRET)
    assert read_mark(old_copy, SECRET) == Mark(MINE, legacy=True)
    assert read_mark(old_copy, b"another secret") is None
    png = io.BytesIO()
    old_copy.save(png, "PNG")
    result = trace(png.getvalue(), SECRET)
    assert result is not None and (result.view_id, result.method) == (MINE, "image-v1")
    png = io.BytesIO()
    embed(page, MINE, SECRET).save(png, "PNG")
    result = trace(png.getvalue(), SECRET)
    assert result is not None and (result.view_id, result.method) == (MINE, "image")


def test_the_id_permutation_is_a_permutation() -> None:
    key = forensic._keyed(SECRET).id_key
    for view_id in (0, 1, MINE, (1 << 48) - 1, 0x5EC0_1234_ABCD):
        assert forensic._unpermute(key, forensic._permute(key, view_id)) == view_id
    assert forensic._permute(key, MINE) != MINE
    assert forensic._permute(forensic._keyed(b"another secret").id_key, MINE) != forensic._permute(key, MINE)
