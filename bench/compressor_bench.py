"""Benchmark of the compressor's image path (run by ``make bench``).

    python bench/compressor_bench.py [--json out.json] [--repeat 7]

Measures, in one run on this machine:

* milliseconds per 12-megapixel photo-like JPEG -> rendition: the compressor's path (``make_rendition``:
  JPEG draft decoding, two-strip parallel resize) against the naive path (full decode, one Lanczos resize,
  the same encoder and settings), median of ``--repeat`` runs after a warm-up, plus the same two paths
  without the encoder (which both share) to show where the time goes;
* peak resident memory of a fresh subprocess (``VmHWM``, its own high-water mark: unlike ``ru_maxrss`` it is
  not inherited from this process across fork and exec) for a 50-megapixel JPEG, for both paths;
* the import time of ``handler`` in a fresh interpreter (cold-start cost), median of 5.

The input images are generated on the fly (see ``compressor/sample_images.py``) and never written to
the repository. Prints a Markdown table; ``--json`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

COMPRESSOR = Path(__file__).resolve().parent.parent / "compressor"
sys.path.insert(0, str(COMPRESSOR))

from PIL import Image, features  # noqa: E402

import sample_images  # noqa: E402
from rendition import RESAMPLE, RenditionOptions, fit_within, make_rendition  # noqa: E402

SIZE_12MP = (4000, 3000)
SIZE_50MP = (8660, 5774)
JPEG_QUALITY = 92  # typical camera quality

# Runs in a fresh interpreter: argv[1] = path of the JPEG, argv[2] = "optimized" or "naive".
_PEAK_MEMORY_CHILD = """
import io, sys, time
sys.path.insert(0, {compressor!r})
from PIL import Image
from rendition import RESAMPLE, RenditionOptions, fit_within, make_rendition

def high_water_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

options = RenditionOptions(webp_method={webp_method})
before = high_water_kb()
data = open(sys.argv[1], "rb").read()
started = time.perf_counter()
if sys.argv[2] == "optimized":
    rendition = make_rendition(data, options)
    out = len(rendition.data)
else:
    im = Image.open(io.BytesIO(data))
    im.load()
    im = im.resize(fit_within(im.size, options.max_long_edge), RESAMPLE)
    buf = io.BytesIO()
    im.save(buf, "WEBP", quality=options.webp_quality, method=options.webp_method)
    out = len(buf.getvalue())
elapsed = time.perf_counter() - started
peak = high_water_kb()
print(before, peak, elapsed, out)
"""

_IMPORT_CHILD = """
import sys, time
sys.path.insert(0, {compressor!r})
started = time.perf_counter()
import handler
print(time.perf_counter() - started)
"""


def naive_rendition(data: bytes, options: RenditionOptions, *, encode: bool = True) -> bytes:
    """Full decode, one resize with the same filter, same encoder settings: the path to beat."""
    im: Image.Image = Image.open(io.BytesIO(data))
    im.load()
    if im.mode != "RGB":
        im = im.convert("RGB")
    im = im.resize(fit_within(im.size, options.max_long_edge), RESAMPLE)
    if not encode:
        return b""
    out = io.BytesIO()
    im.save(out, "WEBP", quality=options.webp_quality, method=options.webp_method)
    return out.getvalue()


def optimized_without_encoder(data: bytes, options: RenditionOptions) -> None:
    """The compressor's decode and resize steps alone (what ``make_rendition`` does before encoding)."""
    import rendition

    with Image.open(io.BytesIO(data)) as im:
        target = fit_within(im.size, options.max_long_edge)
        im.draft(None, target)
        im.load()
        rendition._resize(im, target)


def median_ms(funcs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median wall time of each function; runs are interleaved so that load from other processes on the
    machine hits every path alike."""
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    for func in funcs.values():
        func()  # warm-up: plugin imports, allocator, caches
    for _ in range(repeat):
        for name, func in funcs.items():
            started = time.perf_counter()
            func()
            samples[name].append(time.perf_counter() - started)
    return {name: round(statistics.median(values) * 1000, 1) for name, values in samples.items()}


def peak_memory_mb(path: str, mode: str, webp_method: int) -> dict[str, float]:
    code = _PEAK_MEMORY_CHILD.format(compressor=str(COMPRESSOR), webp_method=webp_method)
    output = subprocess.run(
        [sys.executable, "-c", code, path, mode], check=True, capture_output=True, text=True
    ).stdout.split()
    before_kb, peak_kb, elapsed, out_bytes = int(output[0]), int(output[1]), float(output[2]), int(output[3])
    return {
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "rss_before_mb": round(before_kb / 1024, 1),
        "ms": round(elapsed * 1000, 1),
        "rendition_bytes": out_bytes,
    }


def import_time_ms(runs: int = 5) -> float:
    code = _IMPORT_CHILD.format(compressor=str(COMPRESSOR))
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-west-2")}
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
            ).stdout
        )
        for _ in range(runs)
    ]
    return round(statistics.median(samples) * 1000, 1)


def run(repeat: int, webp_method: int) -> dict[str, object]:
    options = RenditionOptions(webp_method=webp_method)
    photo = sample_images.encode(sample_images.photo_like(*SIZE_12MP, seed=12), "JPEG", quality=JPEG_QUALITY)
    times = median_ms(
        {
            "optimized": lambda: make_rendition(photo, options),
            "naive": lambda: naive_rendition(photo, options),
            "optimized_pre": lambda: optimized_without_encoder(photo, options),
            "naive_pre": lambda: naive_rendition(photo, options, encode=False),
        },
        repeat,
    )
    optimized_ms, naive_ms = times["optimized"], times["naive"]
    optimized_pre_ms, naive_pre_ms = times["optimized_pre"], times["naive_pre"]
    rendition = make_rendition(photo, options)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "photo50.jpg")
        big = sample_images.photo_like(*SIZE_50MP, seed=50)
        big.save(path, "JPEG", quality=JPEG_QUALITY)
        del big
        big_bytes = os.path.getsize(path)
        memory_optimized = peak_memory_mb(path, "optimized", options.webp_method)
        memory_naive = peak_memory_mb(path, "naive", options.webp_method)

    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "pillow": Image.__version__,
            "libjpeg_turbo": features.version("jpg"),
            "libwebp": features.version("webp"),
        },
        "settings": {
            "max_long_edge": options.max_long_edge,
            "webp_quality": options.webp_quality,
            "webp_method": options.webp_method,
            "repeat": repeat,
        },
        "jpeg_12mp": {
            "size": f"{SIZE_12MP[0]}x{SIZE_12MP[1]}",
            "bytes": len(photo),
            "rendition_bytes": len(rendition.data),
            "rendition_size": f"{rendition.width}x{rendition.height}",
            "optimized_ms": optimized_ms,
            "naive_ms": naive_ms,
            "speedup": round(naive_ms / optimized_ms, 2),
            "optimized_without_encoder_ms": optimized_pre_ms,
            "naive_without_encoder_ms": naive_pre_ms,
            "speedup_without_encoder": round(naive_pre_ms / optimized_pre_ms, 2),
        },
        "jpeg_50mp": {
            "size": f"{SIZE_50MP[0]}x{SIZE_50MP[1]}",
            "bytes": big_bytes,
            "optimized": memory_optimized,
            "naive": memory_naive,
        },
        "handler_import_ms": import_time_ms(),
    }


def markdown(result: dict) -> str:
    j12, j50 = result["jpeg_12mp"], result["jpeg_50mp"]
    settings = result["settings"]
    rows = [
        ("12 MP JPEG -> rendition, compressor path", f"{j12['optimized_ms']} ms", ""),
        ("12 MP JPEG -> rendition, naive path", f"{j12['naive_ms']} ms", ""),
        ("speed-up end to end", f"{j12['speedup']}x", "target >= 2x"),
        (
            "decode + resize only, compressor / naive",
            f"{j12['optimized_without_encoder_ms']} / {j12['naive_without_encoder_ms']} ms",
            f"{j12['speedup_without_encoder']}x",
        ),
        ("12 MP input / rendition", f"{j12['bytes']} B / {j12['rendition_bytes']} B", j12["rendition_size"]),
        (
            "50 MP JPEG peak RSS, compressor path",
            f"{j50['optimized']['peak_rss_mb']} MB",
            f"target < 300 MB; {j50['optimized']['ms']} ms",
        ),
        ("50 MP JPEG peak RSS, naive path", f"{j50['naive']['peak_rss_mb']} MB", f"{j50['naive']['ms']} ms"),
        (
            "interpreter + Pillow, before reading the file",
            f"{j50['optimized']['rss_before_mb']} MB",
            f"50 MP input {j50['bytes']} B",
        ),
        ("`import handler` in a fresh interpreter", f"{result['handler_import_ms']} ms", "median of 5"),
    ]
    machine = result["machine"]
    lines = [
        f"Compressor benchmark: {machine['cpus']} CPUs, Python {machine['python']}, Pillow {machine['pillow']}, "
        f"libjpeg-turbo {machine['libjpeg_turbo']}, libwebp {machine['libwebp']}; WebP quality "
        f"{settings['webp_quality']}, method {settings['webp_method']}; median of {settings['repeat']}.",
        "",
        "| measurement | value | note |",
        "|---|---|---|",
        *(f"| {name} | {value} | {note} |" for name, value, note in rows),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per path (median reported)")
    parser.add_argument(
        "--webp-method",
        type=int,
        default=RenditionOptions().webp_method,
        help="libwebp effort 0-6 for both paths (default: the compressor's default)",
    )
    args = parser.parse_args()
    result = run(args.repeat, args.webp_method)
    print(markdown(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
