"""Pure image code: turn the bytes of an uploaded original into a small, metadata-free rendition.

No AWS SDK here (the handler does the I/O), so this module is testable and benchmarkable on its own.

What ``make_rendition`` guarantees for every image it accepts:

* the declared pixel count is checked against ``max_pixels`` before any pixel is decoded
  (decompression bombs are refused, never decoded);
* large JPEGs are decoded at 1/2, 1/4 or 1/8 scale by libjpeg (Pillow's draft mode), never larger
  than needed for the target size;
* the EXIF orientation is applied to the pixels, the first frame of an animation is used, every common
  mode (P/PA with transparency, LA, RGBA, CMYK, 16-bit greyscale, bilevel) becomes RGB or RGBA,
  and an embedded ICC profile is converted to sRGB;
* the long edge is at most ``max_long_edge`` and the image is never upscaled;
* the output carries no metadata at all (no EXIF, GPS, XMP, ICC profile, comments);
* for a JPEG source the output is at most ``max_size_ratio`` times the source's size (quality is lowered
  step by step, then the image is shrunk, until it fits).

Anything that is not a decodable image in an allowed format raises :class:`RejectedImage` with a code and
a reason for people; other exceptions are bugs or real faults and propagate.
"""

from __future__ import annotations

import io
import logging
import math
import os
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import (
    BmpImagePlugin,  # noqa: F401  (registers the plugin without loading all of them)
    GifImagePlugin,  # noqa: F401
    Image,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    UnidentifiedImageError,
    WebPImagePlugin,  # noqa: F401
)

logger = logging.getLogger("compressor.rendition")

try:  # AVIF needs Pillow's optional libavif build; without it AVIF uploads are refused as unsupported.
    from PIL import AvifImagePlugin

    _AVIF = ("AVIF",) if AvifImagePlugin.SUPPORTED else ()
except ImportError:  # pragma: no cover - depends on the Pillow build
    _AVIF = ()

# Formats browsers and phones upload. Restricting Image.open to these keeps exotic decoders (EPS runs
# Ghostscript, TIFF has a large attack surface) out of reach of untrusted input. Multi-picture JPEGs
# (MPO, written by some cameras) are opened by the JPEG plugin and report the format "MPO".
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "BMP", *_AVIF)
JPEG_FORMATS = frozenset({"JPEG", "MPO"})
# The upload types this function renders. The API's `generate` accepts exactly these
# (backend/app/services/images.py, UPLOAD_CONTENT_TYPES; the two images share no code, a test checks that
# the lists agree). AVIF is listed: the pinned Pillow's wheels decode it, and a test fails on a build
# that does not.
RENDERABLE_CONTENT_TYPES: Mapping[str, str] = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/bmp": "BMP",
    "image/avif": "AVIF",
}

OUTPUT_FORMATS: Mapping[str, tuple[str, str, str]] = {
    # OUTPUT_FORMAT value: (Pillow format, key extension, Content-Type)
    "webp": ("WEBP", "webp", "image/webp"),
    "jpeg": ("JPEG", "jpg", "image/jpeg"),
}

RESAMPLE = Image.Resampling.LANCZOS
# Before Lanczos, shrink by an integer box filter while the remaining scale stays >= this gap; Pillow
# documents 3.0 as indistinguishable from a full Lanczos pass (only matters for huge non-JPEG inputs).
REDUCING_GAP = 3.0
# Quality steps and floor used when a JPEG source's rendition must shrink to fit its size budget.
QUALITY_STEP = 10
QUALITY_FLOOR = 40
SHRINK_STEP = 0.8
MIN_SHRINK_EDGE = 16
# Resizes producing at least this many pixels are split into two strips resized in parallel
# (Pillow releases the GIL while resampling; the strips are bit-identical to one pass).
PARALLEL_RESIZE_MIN_PIXELS = 250_000

_ORIENTATION_TRANSPOSE: Mapping[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION_TAG = 0x0112

# Exceptions Pillow raises for files it cannot decode (truncated, corrupt, inconsistent headers).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError)


class ConfigError(ValueError):
    """An environment setting of the compressor is invalid; the message names the variable."""


class RejectedImage(Exception):
    """The input is not an image the compressor will process; ``code`` is stable, ``reason`` is for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class RenditionOptions:
    """How renditions are made. ``from_env`` reads the same fields from environment variables."""

    max_long_edge: int = 1080
    output_format: str = "webp"
    webp_quality: int = 80
    webp_method: int = 4
    jpeg_quality: int = 80
    # Pillow's own warning threshold (Image.MAX_IMAGE_PIXELS): nothing accepted here makes Pillow warn.
    max_pixels: int = 89_478_485
    max_source_bytes: int = 50 * 1024 * 1024
    max_size_ratio: float = 0.75

    def __post_init__(self) -> None:
        _check_range("MAX_LONG_EDGE", self.max_long_edge, 16, 16384)
        if self.output_format not in OUTPUT_FORMATS:
            raise ConfigError(
                f"OUTPUT_FORMAT must be one of {sorted(OUTPUT_FORMATS)}, not {self.output_format!r}"
            )
        _check_range("WEBP_QUALITY", self.webp_quality, 1, 100)
        _check_range("WEBP_METHOD", self.webp_method, 0, 6)
        _check_range("JPEG_QUALITY", self.jpeg_quality, 1, 95)
        _check_range("MAX_PIXELS", self.max_pixels, 1, 1 << 32)
        _check_range("MAX_SOURCE_BYTES", self.max_source_bytes, 1, 1 << 34)
        if not (isinstance(self.max_size_ratio, float) and 0.0 < self.max_size_ratio <= 1.0):
            raise ConfigError(f"MAX_SIZE_RATIO must be a number in (0, 1], not {self.max_size_ratio!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RenditionOptions:
        """Build options from a mapping such as ``os.environ``; unset variables take the defaults above.

        A variable that is set but empty or malformed raises :class:`ConfigError` (never a silent default).
        """
        fields: dict[str, object] = {}
        for name, attr, kind in _ENV_FIELDS:
            raw = environ.get(name)
            if raw is None:
                continue
            value = raw.strip()
            try:
                fields[attr] = kind(value.lower()) if kind is str else kind(value)
            except ValueError:
                raise ConfigError(f"{name} must be {kind.__name__}, not {raw!r}") from None
        return cls(**fields)  # type: ignore[arg-type]

    @property
    def extension(self) -> str:
        """File extension of the rendition key (``webp`` or ``jpg``)."""
        return OUTPUT_FORMATS[self.output_format][1]

    @property
    def content_type(self) -> str:
        """Content-Type of the rendition."""
        return OUTPUT_FORMATS[self.output_format][2]

    @property
    def quality(self) -> int:
        """Encoder quality of the configured output format."""
        return self.webp_quality if self.output_format == "webp" else self.jpeg_quality


_ENV_FIELDS: tuple[tuple[str, str, type], ...] = (
    ("MAX_LONG_EDGE", "max_long_edge", int),
    ("OUTPUT_FORMAT", "output_format", str),
    ("WEBP_QUALITY", "webp_quality", int),
    ("WEBP_METHOD", "webp_method", int),
    ("JPEG_QUALITY", "jpeg_quality", int),
    ("MAX_PIXELS", "max_pixels", int),
    ("MAX_SOURCE_BYTES", "max_source_bytes", int),
    ("MAX_SIZE_RATIO", "max_size_ratio", float),
)


def _check_range(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer in [{low}, {high}], not {value!r}")


@dataclass(frozen=True)
class Rendition:
    """An encoded rendition and what was learnt about its source."""

    data: bytes
    content_type: str
    extension: str
    width: int
    height: int
    quality: int
    source_format: str
    source_width: int
    source_height: int
    orientation: int


def fit_within(size: tuple[int, int], max_long_edge: int) -> tuple[int, int]:
    """The size that fits ``size`` into a ``max_long_edge`` square, keeping the aspect; never larger."""
    width, height = size
    long_edge = max(width, height)
    if long_edge <= max_long_edge:
        return width, height
    scale = max_long_edge / long_edge
    return max(1, round(width * scale)), max(1, round(height * scale))


def make_rendition(data: bytes, options: RenditionOptions | None = None) -> Rendition:
    """Decode ``data`` safely and encode the rendition described in the module docstring.

    Raises :class:`RejectedImage` for empty, oversized, unidentifiable, truncated or corrupt files and for
    images whose declared pixel count exceeds ``options.max_pixels``.
    """
    options = options or RenditionOptions()
    if not data:
        raise RejectedImage("empty", "the file is empty")
    if len(data) > options.max_source_bytes:
        raise RejectedImage(
            "too_large", f"the file has {len(data)} bytes, more than the limit of {options.max_source_bytes}"
        )
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as im:
            return _render(im, len(data), options)
    except RejectedImage:
        raise
    except Image.DecompressionBombError as exc:
        # Pillow's own ceiling (twice Image.MAX_IMAGE_PIXELS) fired inside Image.open, before ours could.
        raise RejectedImage(
            "too_many_pixels", f"the image declares too many pixels ({_short(exc)})"
        ) from None
    except UnidentifiedImageError:
        allowed = ", ".join(ALLOWED_FORMATS)
        raise RejectedImage(
            "not_an_image", f"the file is not an image in a supported format ({allowed})"
        ) from None
    except _DECODE_ERRORS as exc:
        raise RejectedImage("corrupt", f"the image cannot be decoded: {_short(exc)}") from None


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _render(im: Image.Image, source_bytes: int, options: RenditionOptions) -> Rendition:
    source_format = im.format or "unknown"
    source_size = im.size
    width, height = source_size
    if width < 1 or height < 1:
        raise RejectedImage("corrupt", f"the image declares an empty size {width}x{height}")
    if width * height > options.max_pixels:
        raise RejectedImage(
            "too_many_pixels",
            f"the image declares {width}x{height} = {width * height} pixels, "
            f"more than the limit of {options.max_pixels}",
        )
    target = fit_within(source_size, options.max_long_edge)
    if source_format in JPEG_FORMATS and target != source_size:
        # libjpeg scales while decoding (1/2, 1/4, 1/8): never below the target, so never upscaling.
        im.draft(None, target)
    im.load()  # the first frame only; truncated or corrupt data raises here
    orientation = _orientation(im)
    icc_profile = im.info.get("icc_profile")

    img = _to_resizable_mode(im)
    if img.size != target:
        img = _resize(img, target)
    transpose = _ORIENTATION_TRANSPOSE.get(orientation)
    if transpose is not None:
        img = img.transpose(transpose)
    img = _to_output_mode(img, icc_profile, options.output_format)

    budget = math.floor(source_bytes * options.max_size_ratio) if source_format in JPEG_FORMATS else None
    encoded, quality, img = _encode_within_budget(img, options, budget, source_bytes)
    return Rendition(
        data=encoded,
        content_type=options.content_type,
        extension=options.extension,
        width=img.width,
        height=img.height,
        quality=quality,
        source_format=source_format,
        source_width=source_size[0],
        source_height=source_size[1],
        orientation=orientation,
    )


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:  # malformed EXIF must not cost the user the image: treat it as upright
        logger.warning("ignoring unreadable EXIF data", extra={"source_format": im.format})
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_resizable_mode(im: Image.Image) -> Image.Image:
    """Convert modes that cannot be resampled (palette, bilevel, 16/32-bit) to an 8-bit mode."""
    mode = im.mode
    if mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return im
    if mode == "P":
        return im.convert("RGBA" if im.has_transparency_data else "RGB")
    if mode in ("PA", "RGBa"):
        return im.convert("RGBA")
    if mode == "La":
        return im.convert("LA")
    if mode == "1":
        return im.convert("L")
    if mode == "I" or mode.startswith("I;16"):
        # 16-bit greyscale (PNG): scale 0..65535 to 0..255; a plain convert would clip everything above 255.
        wide = im if mode == "I" else im.convert("I")
        return wide.point(lambda value: value / 257).convert("L")
    return im.convert("RGBA" if im.has_transparency_data else "RGB")


def _resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    # Resample alpha premultiplied so transparent pixels' colours do not bleed into the edges.
    premultiplied = {"RGBA": "RGBa", "LA": "La"}.get(img.mode)
    if premultiplied:
        img = img.convert(premultiplied)
    factor = int(min(img.width / size[0], img.height / size[1]) / REDUCING_GAP)
    if factor >= 2:
        img = img.reduce(factor)
    if size[0] * size[1] >= PARALLEL_RESIZE_MIN_PIXELS and (os.cpu_count() or 1) > 1:
        out = _resize_in_two_strips(img, size)
    else:
        out = img.resize(size, RESAMPLE)
    return out.convert({"RGBa": "RGBA", "La": "LA"}[out.mode]) if premultiplied else out


def _resize_in_two_strips(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize the top and bottom halves of the output in two threads.

    Each strip is resampled from a source box; Pillow's filter still reads source pixels outside the box,
    so the seam is invisible and the result equals a single ``resize``.
    """
    width, height = size
    split = height // 2
    scale_y = img.height / height
    parts: dict[str, Image.Image] = {}
    errors: list[BaseException] = []

    def top() -> None:
        try:
            parts["top"] = img.resize((width, split), RESAMPLE, box=(0, 0, img.width, split * scale_y))
        except BaseException as exc:  # re-raised in the calling thread below
            errors.append(exc)

    worker = threading.Thread(target=top, name="rendition-resize")
    worker.start()
    bottom = img.resize((width, height - split), RESAMPLE, box=(0, split * scale_y, img.width, img.height))
    worker.join()
    if errors:
        raise errors[0]
    out = Image.new(img.mode, size)
    out.paste(parts["top"], (0, 0))
    out.paste(bottom, (0, split))
    return out


def _to_output_mode(img: Image.Image, icc_profile: bytes | None, output_format: str) -> Image.Image:
    """Convert to sRGB RGB/RGBA; drop an alpha channel that is fully opaque; flatten alpha for JPEG."""
    has_alpha = img.mode in ("RGBA", "LA")
    if icc_profile and img.mode in ("RGB", "RGBA", "CMYK"):
        converted = _icc_to_srgb(img, icc_profile)
        if converted is not None:
            img = converted
    if img.mode != ("RGBA" if has_alpha else "RGB"):
        img = img.convert("RGBA" if has_alpha else "RGB")
    if has_alpha and img.getchannel("A").getextrema() == (255, 255):
        img = img.convert("RGB")
    if img.mode == "RGBA" and output_format == "jpeg":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        img = background
    return img


def _icc_to_srgb(img: Image.Image, icc_profile: bytes) -> Image.Image | None:
    from PIL import ImageCms  # imported on demand: most uploads are plain sRGB JPEGs without a profile

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        output_mode = "RGBA" if img.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(
            img, source, ImageCms.createProfile("sRGB"), outputMode=output_mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        # A broken or mismatched profile is not worth refusing the image for: fall back to plain conversion.
        logger.warning("ignoring unusable ICC profile", extra={"error": _short(exc)})
        return None
    if converted is None:  # pragma: no cover - profileToProfile returns None only with inPlace=True
        return None
    if output_mode == "RGBA" and converted.mode == "RGBA":
        converted.putalpha(img.getchannel("A"))
    return converted


def _encode(img: Image.Image, options: RenditionOptions, quality: int, *, lossless: bool = False) -> bytes:
    out = io.BytesIO()
    # A fresh, metadata-free copy of the header info: nothing from the source (EXIF, ICC, XMP) is passed on.
    img.info = {}
    if options.output_format == "webp":
        img.save(out, "WEBP", quality=quality, method=options.webp_method, lossless=lossless)
    else:
        img.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
    return out.getvalue()


def _encode_within_budget(
    img: Image.Image, options: RenditionOptions, budget: int | None, source_bytes: int
) -> tuple[bytes, int, Image.Image]:
    """Encode at the configured quality; if over ``budget``, lower the quality, then shrink, until it fits.

    Non-JPEG sources have no budget; for them a lossless WebP is tried when the lossy one is larger than
    the source (flat graphics), and the smaller of the two wins.
    """
    quality = options.quality
    data = _encode(img, options, quality)
    if budget is None:
        if len(data) > source_bytes and options.output_format == "webp":
            lossless = _encode(img, options, 80, lossless=True)
            if len(lossless) < len(data):
                return lossless, 100, img
        return data, quality, img
    if len(data) <= budget:
        return data, quality, img
    best = (data, quality, img)
    while quality > QUALITY_FLOOR:
        quality = max(QUALITY_FLOOR, quality - QUALITY_STEP)
        data = _encode(img, options, quality)
        if len(data) <= budget:
            return data, quality, img
        best = min(best, (data, quality, img), key=lambda item: len(item[0]))
    while max(img.size) > MIN_SHRINK_EDGE:
        size = (max(1, round(img.width * SHRINK_STEP)), max(1, round(img.height * SHRINK_STEP)))
        img = img.resize(size, RESAMPLE)
        data = _encode(img, options, quality)
        if len(data) <= budget:
            return data, quality, img
        best = min(best, (data, quality, img), key=lambda item: len(item[0]))
    logger.warning("rendition exceeds its size budget", extra={"budget": budget, "size": len(best[0])})
    return best
