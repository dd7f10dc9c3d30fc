"""The site icon: /favicon.svg for pages that link it, /favicon.ico (a PNG) for browsers that
just ask. Drawn in code: no binary asset to keep in step with the SVG."""

import functools
import struct
import zlib

from django.http import HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

BLUE = (22, 119, 255)
WHITE = (255, 255, 255)
SIZE = 32

# A speech bubble with three "sound" bars: customer service that speaks.
SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
<rect width="32" height="32" rx="7" fill="#1677ff"/>
<path d="M7 8h18a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H14l-5 4v-4H7a2 2 0 0 1-2-2V10a2 2 0 0 1 2-2z"
 fill="#fff"/>
<rect x="11" y="12" width="2" height="6" rx="1" fill="#1677ff"/>
<rect x="15" y="10" width="2" height="10" rx="1" fill="#1677ff"/>
<rect x="19" y="13" width="2" height="4" rx="1" fill="#1677ff"/>
</svg>"""


def _pixel(x: int, y: int) -> tuple[int, int, int, int]:
    inside_bubble = (5 <= x <= 26 and 8 <= y <= 21) or (8 <= x <= 10 and 22 <= y <= 25)
    bar = (
        (11 <= x <= 12 and 12 <= y <= 17)
        or (15 <= x <= 16 and 10 <= y <= 19)
        or (19 <= x <= 20 and 13 <= y <= 16)
    )
    if inside_bubble and not bar:
        return (*WHITE, 255)
    return (*BLUE, 255)


@functools.cache
def favicon_png() -> bytes:
    rows = b"".join(
        b"\x00" + b"".join(bytes(_pixel(x, y)) for x in range(SIZE)) for y in range(SIZE)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@require_GET
@cache_control(max_age=86400, public=True)
def favicon_ico(request) -> HttpResponse:
    return HttpResponse(favicon_png(), content_type="image/png")


@require_GET
@cache_control(max_age=86400, public=True)
def favicon_svg(request) -> HttpResponse:
    return HttpResponse(SVG, content_type="image/svg+xml")
