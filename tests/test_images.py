"""The one door for image files (tlcore.data.images) and the caps around it."""

from __future__ import annotations

import io
import warnings
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers.fakes import png_claiming
from tlcore.data import datasets, images
from tlcore.data.image_zip import UploadError, read_zip
from tlcore.models import catalog

POSTSCRIPT = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n0 0 moveto 10 10 lineto stroke\nshowpage\n"


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.fast
def test_a_postscript_file_named_png_is_refused_without_running_anything(monkeypatch):
    from PIL import EpsImagePlugin

    def never(*args, **kwargs):
        raise AssertionError("Ghostscript was asked to run")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", never)
    with pytest.raises(images.ImageRefused, match="accepted format"):
        images.decode(POSTSCRIPT, 32)


@pytest.fixture
def decoded(monkeypatch):
    """Every time PIL decodes an image's pixels (its `load`), a line here."""
    from PIL import ImageFile

    loads = []
    for cls in (Image.Image, ImageFile.ImageFile):
        real = cls.load
        monkeypatch.setattr(cls, "load", lambda self, real=real: loads.append(self.size) or real(self))
    return loads


def test_pixels_are_capped_from_the_header_before_decoding(decoded):
    huge = io.BytesIO()
    Image.new("L", (8000, 6000)).save(huge, "PNG")  # 48 MP, compresses to a few KB
    decoded.clear()
    with pytest.raises(images.ImageRefused, match="too many pixels"):
        images.decode(huge.getvalue(), 32)
    assert decoded == []  # refused from the header: nothing was decoded


@pytest.mark.fast
def test_a_header_claiming_ten_billion_pixels_is_refused_with_a_reason_not_pils_error(decoded):
    # PIL raises its own DecompressionBombError inside Image.open, before our pixel check runs.
    claiming = png_claiming(100_000, 100_000)
    decoded.clear()
    with pytest.raises(images.ImageRefused) as refused:
        images.decode(claiming, 32)
    assert refused.value.kind == "pixels" and refused.value.reason.message.key == "image.pixels_claimed"
    assert "10,000,000,000" in str(refused.value) and "40,000,000" in str(refused.value)
    assert decoded == []  # from the header: nothing decoded


def test_a_small_image_is_decoded_where_the_check_sees_it(decoded):
    small = png(np.full((8, 8), 40, np.uint8))
    decoded.clear()
    images.decode(small, 16)
    assert (8, 8) in decoded  # the check above would see a decode


@pytest.mark.fast
def test_pils_bomb_warning_raised_as_an_error_is_the_same_refusal():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as a server run with -W error would: the warning raises
        with pytest.raises(images.ImageRefused, match="100,000,000"):
            images.open_image(png_claiming(10_000, 10_000))  # past PIL's warning limit, under its error limit


@pytest.mark.fast
def test_16_bit_and_float_images_keep_their_contrast():
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    x = images.decode(png(ramp), 32)
    assert x.dtype == torch.uint8 and 100 < x.float().mean() < 155 and x.min() < 10 and x.max() > 245
    buf = io.BytesIO()
    Image.fromarray(np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32), mode="F").save(buf, "TIFF")
    assert 100 < images.decode(buf.getvalue(), 16).float().mean() < 155  # was all white when clipped


@pytest.mark.fast
def test_a_folder_too_big_to_decode_is_refused_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setenv("TLS_MAX_DATASET_BYTES", str(3 * 64 * 64 * 5))  # five 64 px images
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            (tmp_path / cls / f"{i}.png").write_bytes(png(np.full((8, 8), 40 * i, np.uint8)))
    with pytest.raises(ValueError, match="GiB"):
        datasets.load_folder(per_class=2, val_per_class=1, image_size=64, seed=0, root=str(tmp_path))
    assert datasets.load_folder(per_class=2, val_per_class=1, image_size=16, seed=0, root=str(tmp_path)).num_classes == 2


@pytest.mark.fast
def test_an_upload_too_big_to_decode_is_refused(monkeypatch):

    monkeypatch.setenv("TLS_MAX_DATASET_BYTES", str(3 * 32 * 32 * 5))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for cls in ("cats", "dogs"):
            for i in range(4):
                z.writestr(f"{cls}/{i}.png", png(np.full((8, 8), 30 * i, np.uint8)))
    with pytest.raises(UploadError, match="upload fewer images"):
        read_zip(buf.getvalue(), image_size=32)


@pytest.mark.fast
def test_a_deflate64_entry_is_named_for_what_it_is():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for cls in ("cats", "dogs"):
            for i in range(3):
                z.writestr(f"{cls}/{i}.png", png(np.full((8, 8), 30 * i + (cls == "dogs"), np.uint8)))
    data = bytearray(buf.getvalue())
    target = data.index(b"cats/0.png")  # the first entry: mark its method as Deflate64 (9) in both headers
    local = data.rindex(b"PK\x03\x04", 0, target)
    data[local + 8 : local + 10] = (9).to_bytes(2, "little")
    central = data.index(b"PK\x01\x02")
    data[central + 10 : central + 12] = (9).to_bytes(2, "little")
    result = read_zip(bytes(data), image_size=16, val_per_class=1)
    reasons = dict(result.skipped)
    assert "re-zip with standard Deflate" in reasons["cats/0.png"]


@pytest.mark.fast
def test_loaded_datasets_are_kept_within_a_byte_budget(monkeypatch):
    from tlcore.core.bounded import LRU, tensor_bytes

    cache = LRU(2 * 3 * 16 * 16 * 40, weigh=tensor_bytes, keep_newest=True)  # two small digit sets' worth
    loads = []

    def load(seed):
        def go():
            loads.append(seed)
            return datasets.load_digits(per_class=2, val_per_class=2, image_size=16, seed=seed)

        return go

    first = cache.get_or_make(("digits", 0), load(0))
    assert cache.get_or_make(("digits", 0), load(0)) is first and loads == [0]  # a race reuses one copy
    for seed in (1, 2, 3):
        cache.get_or_make(("digits", seed), load(seed))
    held = sum(tensor_bytes(data) for _, data in cache.items())
    assert held == cache.total <= cache.limit and ("digits", 0) not in cache  # the oldest went first
    assert tensor_bytes(first) >= 3 * 16 * 16 * 40  # the images' bytes are counted (train and validation)


@pytest.mark.fast
def test_an_upload_is_refused_once_it_has_decoded_its_pixel_budget():
    from tlcore.data.image_zip import UploadLimits

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(6):
            z.writestr(f"{'ab'[i % 2]}/{i}.png", png(np.full((100, 100), 20 * i, np.uint8)))
    with pytest.raises(UploadError, match="megapixels in all"):
        read_zip(buf.getvalue(), image_size=16, limits=UploadLimits(max_total_pixels=30_000))
    assert len(read_zip(buf.getvalue(), image_size=16, val_per_class=1).classes) == 2  # the default budget: fine


def test_the_upload_bench_command_prints_its_figures():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "tlcore", "upload-bench", "--cases", "huge"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent),
    )
    assert out.returncode == 0, out.stderr
    assert "huge" in out.stdout and "cpu" in out.stdout and "refused" in out.stdout


@pytest.mark.fast
@pytest.mark.parametrize("name", ["digits", "synthetic_novel", "digits_textured", "fashion_mnist"])
def test_every_image_dataset_is_capped_before_anything_is_decoded_or_drawn(name, monkeypatch):
    from tlcore.core.messages import LearnerError

    if name == "fashion_mnist" and not datasets.fashion_available():
        pytest.skip("Fashion-MNIST is not installed")
    datasets._data_cache.clear()
    monkeypatch.setenv("TLS_MAX_DATASET_BYTES", str(3 * 16 * 16 * 100))  # a hundred 16 px images
    with pytest.raises(LearnerError, match="GiB") as refused:  # 10 classes x 12 images at 32 px: too many
        catalog.load_dataset(name, per_class=10, val_per_class=2, image_size=32, seed=0)
    assert refused.value.message.key == "data.too_big"
    assert catalog.load_dataset(name, per_class=5, val_per_class=2, image_size=16, seed=0).train_x.shape == (50, 3, 16, 16)
    datasets._data_cache.clear()


@pytest.mark.fast
def test_large_procedural_sets_are_drawn_in_chunks_and_small_ones_in_one_go(monkeypatch):
    from tlcore.data import procedural

    small = procedural.similar_target(per_class=3, val_per_class=1, image_size=16, seed=4)
    monkeypatch.setattr(procedural, "RENDER_PIXELS", 16 * 16 * 7)  # seven images at a time
    calls = []
    render = procedural.SourceSpec.render

    def counted(self, labels, **kw):
        calls.append(len(labels))
        return render(self, labels, **kw)

    monkeypatch.setattr(procedural.SourceSpec, "render", counted)
    chunked = procedural.similar_target(per_class=3, val_per_class=1, image_size=16, seed=4)
    assert calls == [7, 7, 7, 7, 2, 7, 3]  # 30 training images, then 10 validation images
    assert chunked[1].shape == small[1].shape == (30, 3, 16, 16) and chunked[1].dtype == torch.uint8
    assert chunked[2].tolist() == small[2].tolist()  # the same labels, in the same order
    textured = procedural.textured_digits(per_class=3, val_per_class=1, image_size=16, seed=4)
    assert textured[1].shape == (30, 3, 16, 16) and textured[1].float().std() > 10  # real pictures, not blanks


@pytest.mark.fast
def test_a_picture_to_try_keeps_16_bit_contrast_and_is_at_most_1024_a_side():
    ramp = np.linspace(0, 65535, 300 * 2000).reshape(300, 2000).astype(np.uint16)
    with images.open_image(png(ramp)) as img:
        rgb = images.to_rgb(img, 1024)
    assert rgb.dtype == np.uint8 and rgb.shape == (154, 1024, 3)  # whole picture, aspect kept
    assert rgb.min() < 10 and rgb.max() > 245 and 100 < rgb.mean() < 155  # PIL's own convert made it white
    jpeg = io.BytesIO()
    Image.new("RGB", (4000, 3000), (10, 200, 30)).save(jpeg, "JPEG")
    with images.open_image(jpeg.getvalue()) as img:
        rgb = images.to_rgb(img, 1024)
    assert max(rgb.shape[:2]) == 1024 and abs(int(rgb[..., 1].mean()) - 200) < 4
