"""Synthetic upload images: small, valid PNGs, different each time, made without any imaging library."""

from __future__ import annotations

import random
import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def make_png(edge: int, seed: int | None = None) -> bytes:
    """An `edge` x `edge` RGB PNG: a gradient with noise, so it compresses like a photo (a little)."""
    if not 1 <= edge <= 4096:
        raise ValueError("edge must be between 1 and 4096 pixels")
    rng = random.Random(seed)
    base = [rng.randrange(256) for _ in range(3)]
    rows = bytearray()
    for y in range(edge):
        rows.append(0)  # filter: none
        noise = rng.randbytes(edge * 3)
        for x in range(edge):
            rows.append((base[0] + x + noise[3 * x] // 8) & 0xFF)
            rows.append((base[1] + y + noise[3 * x + 1] // 8) & 0xFF)
            rows.append((base[2] + x + y + noise[3 * x + 2] // 8) & 0xFF)
    header = struct.pack(">IIBBBBB", edge, edge, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 6))
        + _chunk(b"IEND", b"")
    )
