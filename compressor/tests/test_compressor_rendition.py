"""The pure image code: options, sizing, modes, metadata, the size budget; no S3 here."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageCms, JpegImagePlugin

import rendition
import sample_images
from rendition import ConfigError, RejectedImage, RenditionOptions, fit_within, make_rendition


def decoded(result: rendition.Rendition) -> Image.Image:
    return Image.open(io.BytesIO(result.data))


def test_rendition_module_imports_no_aws_sdk():
    code = "import sys, rendition; print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(rendition.__file__).parent,
    )
    assert result.stdout.strip() == "[]"


def test_default_options():
    options = RenditionOptions()
    assert (options.max_long_edge, options.output_format, options.webp_quality) == (1080, "webp", 80)
    assert (options.extension, options.content_type, options.quality) == ("webp", "image/webp", 80)
    assert options.max_size_ratio == 0.75


def test_options_from_environment():
    options = RenditionOptions.from_env(
        {
            "MAX_LONG_EDGE": "720",
            "OUTPUT_FORMAT": "JPEG",
            "JPEG_QUALITY": "70",
            "MAX_PIXELS": "1000000",
            "MAX_SIZE_RATIO": "0.5",
            "UNRELATED": "x",
        }
    )
    assert (options.max_long_edge, options.output_format, options.jpeg_quality) == (720, "jpeg", 70)
    assert (options.max_pixels, options.max_size_ratio) == (1_000_000, 0.5)
    assert (options.extension, options.content_type, options.quality) == ("jpg", "image/jpeg", 70)
    assert RenditionOptions.from_env({}) == RenditionOptions()


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"MAX_LONG_EDGE": "big"}, "MAX_LONG_EDGE"),
        ({"MAX_LONG_EDGE": "0"}, "MAX_LONG_EDGE"),
        ({"WEBP_QUALITY": "101"}, "WEBP_QUALITY"),
        ({"WEBP_QUALITY": ""}, "WEBP_QUALITY"),
        ({"WEBP_METHOD": "7"}, "WEBP_METHOD"),
        ({"OUTPUT_FORMAT": "gif"}, "OUTPUT_FORMAT"),
        ({"MAX_PIXELS": "-1"}, "MAX_PIXELS"),
        ({"MAX_SIZE_RATIO": "1.5"}, "MAX_SIZE_RATIO"),
        ({"MAX_SIZE_RATIO": "half"}, "MAX_SIZE_RATIO"),
    ],
)
def test_bad_settings_are_refused_by_name(environ, variable):
    with pytest.raises(ConfigError, match=variable):
        RenditionOptions.from_env(environ)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((4000, 3000), (1080, 810)),
        ((3000, 4000), (810, 1080)),
        ((1080, 200), (1080, 200)),
        ((500, 500), (500, 500)),
        ((1, 1), (1, 1)),
        ((20000, 10), (1080, 1)),
    ],
)
def test_fit_within_never_upscales(size, expected):
    assert fit_within(size, 1080) == expected


def test_max_long_edge_is_configurable_and_small_images_are_not_upscaled():
    photo = sample_images.encode(sample_images.photo_like(900, 1200), "JPEG", quality=90)

    assert (decoded(make_rendition(photo, RenditionOptions(max_long_edge=300)))).size == (225, 300)
    assert decoded(make_rendition(photo, RenditionOptions(max_long_edge=2000))).size == (900, 1200)


def test_large_jpegs_are_decoded_in_draft_mode(monkeypatch):
    calls = []
    original_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = original_draft(self, mode, size)
        calls.append((size, self.size))
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    photo = sample_images.encode(sample_images.photo_like(4400, 2200), "JPEG", quality=90)

    result = make_rendition(photo)

    # Asked for the 1080x540 target; libjpeg then decoded at 1/4 scale (1100x550), not at full size.
    assert calls == [((1080, 540), (1100, 550))]
    assert (result.width, result.height) == (1080, 540)


def test_parallel_strip_resize_equals_one_resize():
    img = sample_images.photo_like(1500, 1000, seed=4).convert("RGBa")

    assert (
        rendition._resize_in_two_strips(img, (1080, 720)).tobytes()
        == img.resize((1080, 720), rendition.RESAMPLE).tobytes()
    )


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_16_bit_greyscale_modes_are_scaled_to_8_bits(mode):
    img = Image.new(mode, (3, 1))
    for x, value in enumerate((0, 32896, 65535)):
        img.putpixel((x, 0), value)

    assert rendition._to_resizable_mode(img).tobytes() == bytes([0, 128, 255])


def test_bilevel_and_grey_alpha_images():
    bilevel = Image.new("1", (64, 64), 0)
    bilevel.paste(1, (0, 0, 32, 64))
    grey_alpha = Image.new("LA", (64, 64), (90, 0))
    grey_alpha.paste((90, 255), (0, 0, 32, 64))

    one = decoded(make_rendition(sample_images.encode(bilevel, "PNG")))
    two = decoded(make_rendition(sample_images.encode(grey_alpha, "PNG")))

    assert one.mode == "RGB" and one.getpixel((10, 10))[0] > 240 and one.getpixel((50, 10))[0] < 15
    assert two.mode == "RGBA" and two.getpixel((10, 10))[3] == 255 and two.getpixel((50, 10))[3] == 0


def test_fully_opaque_alpha_is_dropped():
    opaque = sample_images.photo_like(300, 200).convert("RGBA")

    assert decoded(make_rendition(sample_images.encode(opaque, "PNG"))).mode == "RGB"


def test_icc_profile_is_applied_then_stripped():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    original = sample_images.encode(
        Image.new("RGB", (200, 100), (200, 40, 40)), "JPEG", quality=95, icc_profile=profile
    )
    assert Image.open(io.BytesIO(original)).info.get("icc_profile")

    image = decoded(make_rendition(original))

    assert "icc_profile" not in image.info and b"ICCP" not in make_rendition(original).data
    assert all(abs(a - b) <= 12 for a, b in zip(image.getpixel((100, 50)), (200, 40, 40), strict=True))


def test_a_broken_icc_profile_does_not_cost_the_image():
    original = sample_images.encode(
        Image.new("RGB", (64, 64), (10, 120, 200)), "JPEG", icc_profile=b"not a profile"
    )

    image = decoded(make_rendition(original))

    assert all(abs(a - b) <= 12 for a, b in zip(image.getpixel((32, 32)), (10, 120, 200), strict=True))


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_malformed_exif_counts_as_upright():
    original = sample_images.encode(
        Image.new("RGB", (60, 40), (0, 0, 255)), "JPEG", exif=b"Exif\x00\x00II*\x00garbage"
    )

    result = make_rendition(original)

    assert (result.width, result.height, result.orientation) == (60, 40, 1)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_puts_the_red_half_where_the_viewer_expects(orientation):
    # Stored: red left, blue right (600x400). Where the red half ends up after applying each orientation:
    red_side = {1: "left", 2: "right", 3: "right", 4: "left", 5: "top", 6: "top", 7: "bottom", 8: "bottom"}
    image = decoded(make_rendition(sample_images.oriented_jpeg(orientation))).convert("RGB")
    width, height = image.size
    assert (width, height) == ((600, 400) if orientation <= 4 else (400, 600))
    probe = {
        "left": (width // 4, height // 2),
        "right": (3 * width // 4, height // 2),
        "top": (width // 2, height // 4),
        "bottom": (width // 2, 3 * height // 4),
    }[red_side[orientation]]
    assert image.getpixel(probe)[0] > 200 and image.getpixel(probe)[2] < 60


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("photo 1600x1200 q95", lambda: sample_images.photo_like(1600, 1200, seed=7)),
        ("photo 3000x2000 q90", lambda: sample_images.photo_like(3000, 2000, seed=8)),
        ("photo 800x600 q92", lambda: sample_images.photo_like(800, 600, seed=9)),
        ("drawing 1600x1200 q90", lambda: sample_images.drawing(1600, 1200, seed=1)),
        ("drawing 900x700 q95", lambda: sample_images.drawing(900, 700, seed=2)),
    ],
)
@pytest.mark.parametrize("output_format", ["webp", "jpeg"])
def test_camera_quality_jpegs_shrink_to_at_most_three_quarters(name, make, output_format):
    quality = int(name.rsplit("q", 1)[1])
    original = sample_images.encode(make(), "JPEG", quality=quality)
    options = RenditionOptions(output_format=output_format)

    result = make_rendition(original, options)

    assert len(result.data) <= 0.75 * len(original)
    assert result.quality == options.quality  # no need to lower the quality for these


@pytest.mark.parametrize(
    "make",
    [
        lambda: sample_images.photo_like(640, 480, seed=3),
        lambda: sample_images.drawing(640, 480, seed=3),
        lambda: sample_images.photo_like(200, 150, seed=4),
    ],
)
@pytest.mark.parametrize("quality", [20, 35])
def test_small_low_quality_jpegs_still_get_a_rendition_within_budget(make, quality):
    original = sample_images.encode(make(), "JPEG", quality=quality)

    result = make_rendition(original)

    assert len(result.data) <= 0.75 * len(original)
    assert result.quality >= rendition.QUALITY_FLOOR
    assert decoded(result).size == (result.width, result.height)


def test_non_jpeg_flat_graphics_fall_back_to_lossless_when_smaller():
    # Eight colours, hard edges and text: a lossy WebP of this is larger than the PNG, a lossless one is not.
    graphic = sample_images.drawing(800, 600, seed=5).quantize(8)
    original = sample_images.encode(graphic, "PNG", optimize=True)

    result = make_rendition(original)

    assert result.quality == 100  # lossless
    assert len(result.data) < len(original)
    assert decoded(result).convert("RGB").tobytes() == graphic.convert("RGB").tobytes()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(sample_images.HTML_PAGE, "not_an_image", id="html"),
        pytest.param(b"%PDF-1.7\n" + b"0" * 100, "not_an_image", id="pdf"),
        pytest.param(sample_images.png_declaring(100_000, 100_000), "too_many_pixels", id="png-bomb"),
        pytest.param(sample_images.jpeg_declaring(60_000, 60_000), "too_many_pixels", id="jpeg-bomb"),
        pytest.param(sample_images.png_declaring(0, 10), "not_an_image", id="png-zero-width"),
        pytest.param(
            sample_images.encode(sample_images.photo_like(300, 200), "JPEG")[:3000],
            "corrupt",
            id="truncated-jpeg",
        ),
        pytest.param(sample_images.rgba_png()[:200], "corrupt", id="truncated-png"),
        pytest.param(
            sample_images.encode(Image.new("RGB", (40, 40)), "TIFF"), "not_an_image", id="tiff-not-allowed"
        ),
    ],
)
def test_refusals(data, code):
    with pytest.raises(RejectedImage) as refused:
        make_rendition(data)

    assert refused.value.code == code
    assert refused.value.reason and "BytesIO" not in refused.value.reason


def test_own_pixel_ceiling_applies_below_pillows():
    with pytest.raises(RejectedImage, match="more than the limit of 100") as refused:
        make_rendition(sample_images.rgba_png(), RenditionOptions(max_pixels=100))

    assert refused.value.code == "too_many_pixels"


def test_webp_and_mpo_inputs_are_accepted():
    webp = sample_images.encode(sample_images.photo_like(500, 300), "WEBP", quality=90)
    mpo = sample_images.encode(
        sample_images.photo_like(400, 300), "MPO", save_all=True, append_images=[Image.new("RGB", (400, 300))]
    )

    assert make_rendition(webp).source_format == "WEBP"
    assert make_rendition(mpo).source_format == "MPO"


@pytest.mark.parametrize(("content_type", "fmt"), sorted(rendition.RENDERABLE_CONTENT_TYPES.items()))
def test_every_upload_type_the_api_accepts_is_rendered(content_type: str, fmt: str) -> None:
    """The API accepts exactly these types for uploads: this build must render each one."""
    assert fmt in rendition.ALLOWED_FORMATS, f"{content_type}: this Pillow build cannot decode {fmt}"
    result = make_rendition(sample_images.encode(sample_images.drawing(120, 90), fmt), RenditionOptions())
    assert (result.width, result.height) == (120, 90)
    assert result.source_format == fmt
