"""Upload forms parsed whole in memory (ingest.adapters.multipart): the same fields, files, names and part headers
as Starlette's streaming parser on every conforming body, fed to it in chunks of any size; the same refusals; a
body cut short of its closing boundary refused (Starlette keeps what was complete); and the routes use it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ingest.adapters.multipart import parse_multipart
from tests.helpers import World, auth, face

BOUNDARY = "7f3c0a9e4b2d4c1e8a6f5b3d2c1e0f9a"
CTYPE = f"multipart/form-data; boundary={BOUNDARY}"
LIMITS = {"max_files": 6, "max_fields": 10, "max_part_size": 300}


async def _items(form: FormData) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            out.append((name, value.filename, await value.read(), value.size, list(value.headers.raw)))
        else:
            out.append((name, value))
    return out


def starlette_form(body: bytes, ctype: str, chunk: int) -> list[tuple[Any, ...]] | str:
    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(body), chunk):
            yield body[i:i + chunk]

    async def run() -> list[tuple[Any, ...]]:
        return await _items(await MultiPartParser(Headers({"content-type": ctype}), stream(), **LIMITS).parse())

    try:
        return asyncio.run(run())
    except MultiPartException:
        return "refused"


def our_form(body: bytes, ctype: str = CTYPE) -> list[tuple[Any, ...]] | str:
    try:
        form = parse_multipart(body, ctype, **LIMITS)
    except MultiPartException:
        return "refused"
    return asyncio.run(_items(form))


def conforming_body(rng: random.Random) -> bytes:
    """A body as a browser or phone sends it (no part holds the delimiter), with what RFC 2046 lets vary: padding
    after a boundary, line breaks before the first, an epilogue; parts empty, binary, text, unicode-named."""
    pieces = [b"\r\n"] if rng.random() < 0.1 else []
    alphabet = [b"a", b"\xe5\x90\x8d", b"\r\n", b"\r", b"\n", b"-", b"--", b"\xff\xd8", b"\x00", b"--7f3c",
                b"\r\n--7f3c0a9e", b" ", b"\t"]
    for i in range(rng.randint(0, 12)):
        name = rng.choice([b"photo", b"trainee_id", "班级".encode(), b"frames", b"a b"])
        disposition = b'Content-Disposition: form-data; name="' + name + b'"'
        is_file = rng.random() < 0.4
        if is_file:
            disposition += b'; filename="' + rng.choice([b"p.jpg", "照片.jpg".encode(), b""]) + b'"'
        headers = [disposition] + ([b"Content-Type: image/jpeg"] if is_file and rng.random() < 0.7 else [])
        data = b"".join(rng.choice(alphabet) for _ in range(rng.choice([0, 5, 60, 200])))
        padding = b"" if i == 0 else rng.choice([b"", b"", b" ", b" \t"])
        pieces.append(f"--{BOUNDARY}".encode() + padding + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + data
                      + b"\r\n")
    pieces.append(f"--{BOUNDARY}--".encode() + rng.choice([b"", b"\r\n", b"\r\nepilogue\r\n"]))
    return b"".join(pieces)


@pytest.mark.parametrize("seed", range(4))
def test_every_conforming_body_parses_as_starlette_parses_it(seed: int) -> None:
    rng = random.Random(seed)
    refused = parsed = 0
    for _ in range(300):
        body = conforming_body(rng)
        ours = our_form(body)
        assert ours == starlette_form(body, CTYPE, rng.choice([1, 3, 64, 4096, len(body) + 1])), body
        refused, parsed = refused + (ours == "refused"), parsed + (ours != "refused")
    assert parsed > 100 and refused > 30  # both kinds were tried (too many files or fields, a long text field)


def test_a_photo_comes_back_byte_for_byte_with_its_headers() -> None:
    photo = bytes(range(256)) * 40 + b"\r\n--" + b"\r\n"
    body = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="trainee_id"\r\n\r\n42\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n").encode() + photo + f"\r\n--{BOUNDARY}--\r\n".encode()
    items = our_form(body)
    assert items == [("trainee_id", "42"),
                     ("photo", "p.jpg", photo, len(photo), [(b"content-disposition",
                                                              b'form-data; name="photo"; filename="p.jpg"'),
                                                             (b"content-type", b"image/jpeg")])]


@pytest.mark.parametrize(("body", "why"), [
    (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\n\r\nx'.encode(), "no closing boundary"),
    (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--{BOUNDARY}'.encode(), "cut at it"),
    (f'--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{BOUNDARY}--'.encode(), "a part with no name"),
    (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\nx\r\n--{BOUNDARY}--'.encode(), "no blank line"),
    (f'--{BOUNDARY}\r\nbad header\r\n\r\nx\r\n--{BOUNDARY}--'.encode(), "a header without a colon"),
    (f'preamble\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--{BOUNDARY}--'.encode(),
     "a preamble"),
    (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\n\r\n{"x" * 301}\r\n--{BOUNDARY}--'.encode(),
     "a text field over max_part_size"),
    ("".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="x"\r\n\r\nx\r\n'
             for _ in range(7)).encode() + f"--{BOUNDARY}--".encode(), "too many files"),
])
def test_malformed_bodies_are_refused(body: bytes, why: str) -> None:
    assert our_form(body) == "refused", why


def test_a_content_type_without_boundary_is_refused() -> None:
    assert our_form(b"--x\r\n", "multipart/form-data") == "refused"


def test_a_form_of_no_parts_or_no_body_is_empty() -> None:
    assert our_form(b"") == [] and our_form(f"--{BOUNDARY}--\r\n".encode()) == []


def test_a_body_cut_short_reaches_the_phone_as_a_400_and_stores_nothing(world: World) -> None:
    photo = face("people/obama/obama2.jpg")
    before = world.stored()
    fields = {"trainee_id": "1", "class_id": "1", "kind": "sign_in", "captured_at": "2026-01-01T00:00:00+00:00",
              "latitude": "25", "longitude": "102.7", "accuracy_m": "10", "device_id": "d"}
    head = "".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                   for k, v in fields.items())
    body = (head + f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n").encode() + photo[: len(photo) // 2]
    r = world.client.post("/api/v1/check-ins", content=body, headers={**auth(world.site), "content-type": CTYPE})
    assert r.status_code == 400 and r.json()["code"] == "MALFORMED_REQUEST", r.text
    assert world.stored() == before


@pytest.mark.parametrize(("body", "ctype"), [
    (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\nContent-Disposition: form-data; name="b"'
     f'\r\n\r\nx\r\n--{BOUNDARY}--'.encode(), CTYPE),  # the last disposition names the part
    (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="名"\r\n\r\n'.encode("gbk") + "值".encode("gbk")
     + f"\r\n--{BOUNDARY}--".encode(), CTYPE + "; charset=gbk"),
    (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\n\r\n'.encode() + b"\xff\xfe"
     + f"\r\n--{BOUNDARY}--".encode(), CTYPE),  # not UTF-8: Latin-1, never an error
    (f'--{BOUNDARY}\r\ncontent-disposition: form-data; name="f"; filename="C:\\\\dir\\\\p.jpg"\r\n\r\nx'
     f"\r\n--{BOUNDARY}--".encode(), CTYPE),
])
def test_edge_cases_parse_as_starlette_parses_them(body: bytes, ctype: str) -> None:
    assert our_form(body, ctype) == starlette_form(body, ctype, 7) != "refused"
