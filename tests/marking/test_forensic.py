"""The invisible mark: read back after the copies a leaker makes, and never a wrong id."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.marking.conftest import SECRET, VIEW_ID
from vault.marking import MarkingError, decode, embed
from vault.marking.forensic import PEAK

BICUBIC = Image.Resampling.BICUBIC


def resave(image: Image.Image, fmt: str, **options: object) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


ATTACKS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "none": lambda im: im,
    "jpeg-q75": lambda im: resave(im, "JPEG", quality=75),
    "half-size": lambda im: im.resize((im.width // 2, im.height // 2), BICUBIC),
    "half-size-and-back": lambda im: im.resize((im.width // 2, im.height // 2), BICUBIC).resize(im.size, BICUBIC),
    "crop-10pc-each-side": lambda im: im.crop((im.width // 10, im.height // 10, im.width - im.width // 10,
                                                im.height - im.height // 10)),
    "screenshot-80pc-png": lambda im: resave(im.resize((im.width * 4 // 5, im.height * 4 // 5), BICUBIC), "PNG"),
    "webp-q80": lambda im: resave(im, "WEBP", quality=80),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_mark_survives(marked_page: Image.Image, attack: str) -> None:
    assert decode(ATTACKS[attack](marked_page), SECRET) == VIEW_ID


def test_mark_is_faint(page: Image.Image, marked_page: Image.Image) -> None:
    delta = np.asarray(marked_page, dtype=float) - np.asarray(page, dtype=float)
    assert np.abs(delta).max() <= PEAK
    assert 10 * np.log10(255**2 / (delta**2).mean()) > 40  # PSNR in dB


def test_unmarked_page_reads_nothing(page: Image.Image) -> None:
    assert decode(page, SECRET) is None


def test_wrong_key_reads_nothing(marked_page: Image.Image) -> None:
    assert decode(marked_page, b"another secret") is None


def test_noise_and_blank_read_nothing() -> None:
    noise = np.random.default_rng(7).integers(0, 256, (1754, 1240, 3), dtype=np.uint8)
    assert decode(Image.fromarray(noise, "RGB"), SECRET) is None
    assert decode(Image.new("RGB", (1240, 1754), "white"), SECRET) is None


def test_tiny_image_reads_nothing_and_cannot_be_marked() -> None:
    tiny = Image.new("RGB", (40, 30), "white")
    assert decode(tiny, SECRET) is None
    with pytest.raises(MarkingError):
        embed(tiny, 1, SECRET)


@pytest.mark.parametrize("bad", [-1, 1 << 48, True, 1.5])
def test_id_out_of_range_is_refused(page: Image.Image, bad: object) -> None:
    with pytest.raises(MarkingError):
        embed(page, bad, SECRET)  # type: ignore[arg-type]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(view_id=st.integers(min_value=0, max_value=(1 << 48) - 1))
def test_any_id_round_trips(page: Image.Image, view_id: int) -> None:
    assert decode(resave(embed(page, view_id, SECRET), "JPEG", quality=75), SECRET) == view_id
