"""`make seed`: a demo user with a few public and private posts, made through the API of a running stack.

Everything goes the way a client goes (register, log in, presigned POST straight to S3, confirm), so the
compressor makes renditions as for any upload. Safe to run again: the user is reused.
"""

from __future__ import annotations

import io
import os
import sys

import httpx
from PIL import Image, ImageDraw

DEMO_USER = {"username": "demo", "email": "demo@example.com", "password": "yoctogram-demo"}
POSTS = [
    ("public", "sunrise"),
    ("public", "harbour"),
    ("private", "family"),
    ("public", "mountains"),
    ("private", "notes"),
]


def picture(seed: int, title: str) -> bytes:
    """A photo-like JPEG: a gradient sky, a fractal landscape, a caption."""
    width, height = 1440, 1080
    sky = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    tint = Image.new("RGB", (width, height), ((40 * seed) % 255, (90 + 30 * seed) % 255, 200))
    image = Image.blend(sky, tint, 0.6)
    land = Image.effect_mandelbrot((width, height // 2), (-2 + seed * 0.1, -1, 1, 1), 40 + seed).convert(
        "RGB"
    )
    image.paste(land, (0, height // 2))
    ImageDraw.Draw(image).text((40, 40), title, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> int:
    base = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
    api = f"{base}/api/v1"
    try:
        httpx.get(f"{api}/health", timeout=3).raise_for_status()
    except httpx.HTTPError:
        print(
            f"ERROR: nothing answers at {base}. Start the app with `make up` (in another terminal) first.",
            file=sys.stderr,
        )
        return 1
    created = httpx.post(f"{api}/auth/register/", json=DEMO_USER, timeout=30)
    if created.status_code not in (201, 409):
        print(f"ERROR: could not register the demo user: {created.text}", file=sys.stderr)
        return 1
    login = httpx.post(f"{api}/auth/login/", json=DEMO_USER, timeout=30)
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    for seed, (privacy, title) in enumerate(POSTS):
        made = httpx.post(f"{api}/images/upload/{privacy}/generate", headers=headers, timeout=30).json()
        sent = httpx.post(
            made["url"],
            data=made["fields"],
            files={"file": (f"{title}.jpg", picture(seed, title), "image/jpeg")},
            timeout=60,
        )
        sent.raise_for_status()
        httpx.post(
            f"{api}/images/upload/{made['id']}/confirm", headers=headers, timeout=30
        ).raise_for_status()
        print(f"==> {privacy:<7} post '{title}' ({made['id']})")
    print(f"\nLog in at {base}/ as '{DEMO_USER['username']}' with password '{DEMO_USER['password']}'.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
