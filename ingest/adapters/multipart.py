"""Multipart form bodies parsed whole in memory: the body is read (it is capped at `max_body_bytes`), then cut at
its boundaries with `bytes.find`; a photo part is one slice of it. Starlette's streaming parser feeds each 64 KB
chunk through Python callbacks into a spooled file and copies it out again: on a 12 MP sign-in that was about a
fifth of an API process's CPU (`scripts/bench_ingest.py`, README "Load")."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Coroutine
from io import BytesIO
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

TRANSPORT_PADDING = b" \t"
"""What RFC 2046 allows between a boundary and its line break."""
PADDED_LINE_END = re.compile(rb"[ \t]*\r\n")


class _PartBytes(BytesIO):
    """A file part's bytes; `_rolled` tells Starlette's UploadFile it is in memory (read without a thread hop)."""

    _rolled = False


def _decode(value: bytes, charset: str) -> str:
    """A field's text as Starlette decodes it: the form's charset, else Latin-1 (never an error)."""
    try:
        return value.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return value.decode("latin-1")


def _part_headers(block: bytes) -> list[tuple[bytes, bytes]]:
    """A part's header lines as (lower-cased name, value) pairs."""
    headers = []
    for line in block.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise MultiPartException("Invalid multipart data.")
        headers.append((name.strip().lower(), value.strip()))
    return headers


def _find_delimiter(body: bytes, delimiter: bytes, start: int) -> int:
    """Where the next delimiter (CRLF, "--", the boundary) that ends a part is, from `start`; -1 if none. A delimiter
    is one followed by "--" (the form closes) or by optional padding and a line break (the next part); the same
    bytes followed by anything else are part data (a conforming sender never puts them in a part)."""
    while (end := body.find(delimiter, start)) >= 0:
        after = end + len(delimiter)
        if body.startswith(b"--", after):
            return end
        if PADDED_LINE_END.match(body, after):
            return end
        start = end + 1
    return -1


def parse_multipart(body: bytes, content_type: str, max_files: int | float = 1000, max_fields: int | float = 1000,
                    max_part_size: int = 1024 * 1024) -> FormData:
    """A `multipart/form-data` body (RFC 7578) as Starlette's FormData: text fields decoded, file parts as
    UploadFile over their bytes. Raises MultiPartException (Starlette's messages) where Starlette's parser does: no
    boundary, a preamble other than line breaks, a part without a name, too many files or fields, a text field over
    `max_part_size` bytes. One difference: a body cut short of its closing boundary is refused, where Starlette
    keeps the parts that were complete and drops the rest without a word."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise MultiPartException("Missing boundary in multipart.")
    charset_name = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset_name).name
    except LookupError:
        charset = "latin-1"
    body = body.lstrip(b"\r\n")  # as Starlette's parser, line breaks before the first boundary are skipped
    if not body:
        return FormData()  # as Starlette: the route then names the fields it misses
    dash = b"--" + boundary
    delimiter = b"\r\n" + dash
    if body == dash or body.startswith(dash + b"--"):
        return FormData()  # a form of no parts
    if not body.startswith(dash + b"\r\n"):  # no padding after the first boundary (Starlette's parser refuses it)
        raise MultiPartException("Invalid multipart data.")
    items: list[tuple[str, str | UploadFile]] = []
    files = fields = 0
    pos = len(dash)
    while not body.startswith(b"--", pos):  # "--" after a boundary closes the form; what follows is ignored
        line_end = body.find(b"\r\n", pos)
        if line_end < 0 or body[pos:line_end].strip(TRANSPORT_PADDING):
            raise MultiPartException("Invalid multipart data.")
        start = line_end + 2
        if body.startswith(dash + b"--", start):  # a closing boundary without its line break: no part between
            break
        end = _find_delimiter(body, delimiter, start - 2)  # a part with no headers and no data ends where it starts
        if end < 0:
            raise MultiPartException("Invalid multipart data.")
        if body.startswith(b"\r\n", start) or end == start - 2:
            block, data_start = b"", start + 2
        else:
            split = body.find(b"\r\n\r\n", start, end + 2)
            if split < 0:
                raise MultiPartException("Invalid multipart data.")
            block, data_start = body[start:split], split + 4
        headers = _part_headers(block) if block else []
        disposition = b""
        for header, value in headers:
            if header == b"content-disposition":
                disposition = value  # the last one, as Starlette
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise MultiPartException('The Content-Disposition header field "name" must be provided.')
        name = _decode(options[b"name"], charset)
        data = body[data_start:end] if data_start <= end else b""
        if b"filename" in options:
            files += 1
            if files > max_files:
                raise MultiPartException(f"Too many files. Maximum number of files is {max_files}.")
            items.append((name, UploadFile(_PartBytes(data), size=len(data), filename=_decode(options[b"filename"],
                                                                                            charset),
                                           headers=Headers(raw=headers))))
        else:
            fields += 1
            if fields > max_fields:
                raise MultiPartException(f"Too many fields. Maximum number of fields is {max_fields}.")
            if len(data) > max_part_size:
                raise MultiPartException(f"Part exceeded maximum size of {int(max_part_size / 1024)}KB.")
            items.append((name, _decode(data, charset)))
        pos = end + len(delimiter)
    return FormData(items)


class InMemoryFormRequest(Request):
    """A request whose multipart form is parsed by `parse_multipart`; other forms as Starlette parses them."""

    async def _get_form(self, *, max_files: int | float = 1000, max_fields: int | float = 1000,
                        max_part_size: int = 1024 * 1024) -> FormData:
        if self._form is None:
            content_type = self.headers.get("Content-Type", "")
            media_type, _ = parse_options_header(content_type)
            if media_type != b"multipart/form-data":
                return await super()._get_form(max_files=max_files, max_fields=max_fields,
                                               max_part_size=max_part_size)
            try:
                self._form = parse_multipart(await self.body(), content_type, max_files, max_fields, max_part_size)
            except MultiPartException as exc:
                raise HTTPException(status_code=400, detail=exc.message) from None
        return self._form


class InMemoryFormRoute(APIRoute):
    """The route class of every router that takes uploads: its endpoint sees an `InMemoryFormRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(InMemoryFormRequest(request.scope, request.receive, request._send))

        return handle
