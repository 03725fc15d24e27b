"""Generated test images for the compressor's tests and benchmark (not copied into the Lambda image).

Photo-like images mix smooth random structure, gradients and fine noise, so their JPEG sizes are those of
camera photos (about 4 MB for 12 megapixels at quality 92): a flat colour would compress to nothing and
prove nothing. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import ExifTags, Image, ImageDraw

# EXIF GPS position written into test photos (the rendition must not carry it).
GPS_LATITUDE = (52.0, 31.0, 12.5)
GPS_LONGITUDE = (13.0, 24.0, 36.0)


def photo_like(width: int, height: int, seed: int = 0) -> Image.Image:
    """An RGB image with the statistics of a photo: smooth blobs, a gradient, sensor-like noise."""
    rnd = random.Random(seed)
    coarse_size = (width // 48 + 2, height // 48 + 2)
    coarse = Image.frombytes("RGB", coarse_size, rnd.randbytes(coarse_size[0] * coarse_size[1] * 3))
    detail_size = (width // 6 + 2, height // 6 + 2)
    detail = Image.frombytes("RGB", detail_size, rnd.randbytes(detail_size[0] * detail_size[1] * 3))
    base = Image.blend(
        coarse.resize((width, height), Image.Resampling.BICUBIC),
        detail.resize((width, height), Image.Resampling.BILINEAR),
        0.25,
    )
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    base = Image.blend(base, gradient, 0.3)
    noise = Image.frombytes("L", (width, height), rnd.randbytes(width * height)).convert("RGB")
    return Image.blend(base, noise, 0.07)


def drawing(width: int, height: int, seed: int = 0) -> Image.Image:
    """An RGB drawing: flat background, filled shapes, thin lines and text (hard edges, few colours)."""
    rnd = random.Random(seed)
    img = Image.new("RGB", (width, height), (250, 248, 240))
    draw = ImageDraw.Draw(img)
    palette = [(220, 40, 40), (30, 90, 200), (20, 150, 70), (240, 180, 0), (40, 40, 40), (150, 60, 170)]
    for _ in range(40):
        x0, y0 = rnd.randrange(width), rnd.randrange(height)
        x1, y1 = x0 + rnd.randrange(20, max(21, width // 3)), y0 + rnd.randrange(20, max(21, height // 3))
        colour = rnd.choice(palette)
        shape = rnd.randrange(3)
        if shape == 0:
            draw.rectangle((x0, y0, x1, y1), fill=colour, outline=(0, 0, 0), width=3)
        elif shape == 1:
            draw.ellipse((x0, y0, x1, y1), fill=colour, outline=(0, 0, 0), width=2)
        else:
            draw.line((x0, y0, x1, y1), fill=colour, width=rnd.randrange(1, 6))
    for row in range(0, height, max(40, height // 12)):
        draw.text((10, row), f"Yoctogram sketch {seed} row {row}: the quick brown fox", fill=(0, 0, 0))
    return img


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    """``img`` saved in ``fmt`` with Pillow's ``params``."""
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def exif_with_orientation_and_gps(orientation: int) -> Image.Exif:
    """EXIF with an orientation tag, a camera model and a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Model] = "Yoctocam 1"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = GPS_LATITUDE
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = GPS_LONGITUDE
    return exif


def oriented_jpeg(orientation: int = 6) -> bytes:
    """A 600x400 stored JPEG (red left half, blue right half) tagged with ``orientation`` and GPS."""
    img = Image.new("RGB", (600, 400), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 300, 400))
    return encode(img, "JPEG", quality=92, exif=exif_with_orientation_and_gps(orientation))


def rgba_png() -> bytes:
    """A 300x200 RGBA PNG: opaque green left half, fully transparent right half."""
    img = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    img.paste((0, 200, 0, 255), (0, 0, 150, 200))
    return encode(img, "PNG")


def palette_gif_with_transparency() -> bytes:
    """A 120x80 palette GIF: index 1 (red) on the left, transparent index 0 on the right."""
    img = Image.new("P", (120, 80), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    img.paste(1, (0, 0, 60, 80))
    return encode(img, "GIF", transparency=0)


def animated_gif() -> bytes:
    """A three-frame 100x100 GIF: red, green, blue."""
    frames = [Image.new("RGB", (100, 100), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def cmyk_jpeg() -> bytes:
    """A 200x100 CMYK JPEG: pure cyan left half, pure yellow right half."""
    img = Image.new("CMYK", (200, 100), (0, 0, 255, 0))
    img.paste((255, 0, 0, 0), (0, 0, 100, 100))
    return encode(img, "JPEG", quality=95)


def grey16_png() -> bytes:
    """A 256x64 16-bit greyscale PNG: a horizontal ramp over the full 0..65535 range."""
    img = Image.new("I;16", (256, 64))
    img.putdata([x * 257 for x in range(256)] * 64)
    return encode(img, "PNG")


def rgb16_png(width: int = 64, height: int = 32) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one, so the chunks are assembled here): orange."""
    pixel = struct.pack(">HHH", 65535, 32896, 0)
    raw = b"".join(b"\x00" + pixel * width for _ in range(height))
    return _png(struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0), zlib.compress(raw))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG header declaring ``width`` x ``height`` RGB pixels followed by a tiny (bogus) image stream."""
    return _png(struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0), zlib.compress(b"\x00" * 64))


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header is patched to declare ``width`` x ``height`` pixels."""
    data = bytearray(encode(Image.new("RGB", (16, 16), (90, 90, 90)), "JPEG", quality=90))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def _png(ihdr: bytes, idat: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>not a photo</title></head><body>hello</body></html>\n"
