"""Image reading: whatever the bytes, the answer is an image or an ImageError naming the file."""

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resdropnet.images import ImageError, decode_image, declared_size, sniff_format, to_bgr
from resdropnet.inference.video import VideoError, open_capture

rng = np.random.default_rng(0)
PHOTO = cv2.GaussianBlur(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8), (5, 5), 0)
ENCODED = {ext: cv2.imencode(ext, PHOTO)[1].tobytes() for ext in (".jpg", ".png", ".webp", ".bmp")}


@pytest.mark.parametrize("ext", sorted(ENCODED))
def test_header_sizes_match_the_pixels(ext):
    data = ENCODED[ext]
    assert declared_size(data, sniff_format(data)) == (80, 60)
    assert decode_image(data, f"x{ext}").shape == (60, 80, 3)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_never_crash(data):
    try:
        image = decode_image(data, "fuzz.bin")
    except ImageError as error:
        assert str(error).startswith("fuzz.bin: ")
    else:
        assert image.ndim == 3 and image.dtype == np.uint8


@settings(max_examples=200, deadline=None)
@given(ext=st.sampled_from(sorted(ENCODED)), cut=st.floats(0, 1), flips=st.lists(st.integers(0, 10**6), max_size=8))
def test_damaged_real_images_never_crash(ext, cut, flips):
    data = bytearray(ENCODED[ext][: max(1, int(len(ENCODED[ext]) * cut))])
    for position in flips:
        data[position % len(data)] ^= 0xFF
    try:
        decode_image(bytes(data), f"damaged{ext}")
    except ImageError as error:
        assert f"damaged{ext}: " in str(error)


def test_arrays_of_every_kind_become_bgr():
    gray = PHOTO[..., 0]
    assert to_bgr(gray).shape == (60, 80, 3)
    assert np.array_equal(to_bgr(PHOTO[..., ::-1], channel_order="rgb"), PHOTO)
    assert np.array_equal(to_bgr(cv2.cvtColor(PHOTO, cv2.COLOR_BGR2BGRA)), PHOTO)
    assert np.array_equal(to_bgr(PHOTO.astype(np.uint16) * 257), PHOTO)
    assert np.array_equal(to_bgr(PHOTO / 255.0), np.clip(PHOTO / 255.0 * 255, 0, 255).astype(np.uint8))
    with pytest.raises(ImageError, match="shape"):
        to_bgr(np.zeros((4, 4, 2), np.uint8))


def test_a_missing_camera_is_a_clear_error():
    with pytest.raises(VideoError, match="camera 7"):
        open_capture(7)


def test_jpeg_with_bytes_after_its_end_is_fine_but_a_cut_one_is_not():
    jpeg = ENCODED[".jpg"]
    assert decode_image(jpeg + b"camera maker's trailer", "trailer.jpg").shape == (60, 80, 3)
    with pytest.raises(ImageError, match="cut.jpg: truncated"):
        decode_image(jpeg[: len(jpeg) - 40], "cut.jpg")
