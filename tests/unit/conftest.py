"""Shared helpers of the unit tests."""

import io
import random

import pytest


def noisy_jpeg(size=(320, 240), seed=0) -> bytes:
    """A deterministic noisy JPEG (noise keeps the entropy-coded data long)."""
    from PIL import Image

    noise = random.Random(seed).randbytes(size[0] * size[1] * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", size, noise).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def make_jpeg():
    return noisy_jpeg
