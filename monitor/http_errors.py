"""HTTP plumbing shared by every route: the body-size limit and the JSON error responses."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.errors import ApiError

log = logging.getLogger(__name__)


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self) -> JSONResponse:
        limit = self.max_bytes
        size = f"{limit / 1024 / 1024:.0f} MB" if limit >= 1024 * 1024 else f"{limit / 1024:.0f} KB"
        return JSONResponse({"code": "BODY_TOO_LARGE", "message": f"上传内容过大，上限为 {size}"}, status_code=413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    too_large = False
                if too_large:
                    await self._error()(scope, receive, send)
                    return
        received = 0
        started = False
        exceeded = False
        answered = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # Frameworks may turn the exception above into their own 400; answer 413 instead.
            nonlocal started, answered
            if exceeded and not started:
                if not answered:
                    answered = True
                    await self._error()(scope, receive, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if not started and not answered:
                await self._error()(scope, receive, send)


_FIELD_MESSAGES = {
    "missing": "缺少字段",
    "float_parsing": "必须是数字",
    "int_parsing": "必须是整数",
    "bool_parsing": "必须是 true 或 false",
    "enum": "取值无效",
    "json_invalid": "不是有效的 JSON",
}


def describe_validation_errors(errors: list[dict[str, Any]]) -> tuple[str, str, list[dict[str, Any]]]:
    """A stable code, a zh-CN sentence and per-field details for FastAPI's validation errors."""
    parts = []
    details = []
    missing = all(e.get("type") == "missing" for e in errors)
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path", "header", "form")]
        field = ".".join(loc) or "请求"
        kind = e.get("type", "")
        text = _FIELD_MESSAGES.get(kind)
        if kind == "missing":
            parts.append(f"缺少字段 {field}")
        elif text:
            parts.append(f"字段 {field} {text}")
        else:
            msg = str(e.get("msg", "")).removeprefix("Value error, ")
            parts.append(f"字段 {field} 无效：{msg}")
        details.append({"field": field, "type": kind})
    return ("MISSING_FIELD" if missing else "INVALID_FIELD"), "；".join(parts), details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.to_body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        code, message, details = describe_validation_errors(list(exc.errors()))
        return JSONResponse({"code": code, "message": message, "detail": {"fields": details}}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        names = {
            400: ("MALFORMED_REQUEST", "请求格式无法解析（表单不完整或格式错误）"),
            404: ("NOT_FOUND", "请求的地址不存在"),
            405: ("METHOD_NOT_ALLOWED", "不支持该请求方法"),
        }
        code, message = names.get(exc.status_code, ("HTTP_ERROR", str(exc.detail)))
        return JSONResponse({"code": code, "message": message}, status_code=exc.status_code)

    @app.exception_handler(json.JSONDecodeError)
    async def json_error(_request: Request, _exc: json.JSONDecodeError) -> JSONResponse:
        return JSONResponse({"code": "INVALID_JSON", "message": "请求体不是有效的 JSON"}, status_code=422)
