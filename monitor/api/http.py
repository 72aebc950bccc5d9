"""HTTP plumbing shared by every route: the body-size limit and the JSON error responses."""

from __future__ import annotations

import errno
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, PendingRollbackError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.domain import Role
from models.errors import ERROR_DESCRIPTIONS, ApiError, ErrorBody
from models.scope import declared_roles
from monitor.adapters.logsafe import REQUEST_ID

log = logging.getLogger(__name__)
access = logging.getLogger("monitor.access")


class RequestIds:
    """Every request gets an id: the client's `X-Request-ID` when it is 1 to 64 visible ASCII characters, else a new
    one; it is on every log line written for the request (monitor/adapters/logsafe.py) and in the answer's
    `X-Request-ID`, so a user's report can be found in the logs of every process."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(b"x-request-id", b"")
        rid = given.decode("ascii", "replace") if 0 < len(given) <= 64 and all(33 <= c < 127 for c in given) \
            else uuid.uuid4().hex[:16]
        token = REQUEST_ID.set(rid)
        started, status = time.monotonic(), 0

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            if scope["type"] == "http":  # the access line (uvicorn's own is off: it knows no request id)
                access.info("%s %s %d %.1f ms", scope["method"], scope["path"], status,
                            (time.monotonic() - started) * 1000)
            REQUEST_ID.reset(token)


class NoNulInAddress:
    """Refuse a request whose path or query holds a NUL character (`%00`) with a clear 422 before any route: no
    database stores it (PostgreSQL refuses it as an error, SQLite compares it), and no name, code or filter has one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and (
                b"%00" in scope.get("query_string", b"") or "\x00" in scope.get("path", "")):
            if scope["type"] == "http":
                await JSONResponse({"code": "NUL_IN_ADDRESS", "message": "请求地址或查询参数中不得包含 NUL（%00）字符"},
                                   status_code=422)(scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413, by Content-Length or while streaming (a body that
    stalls is cut off by the server protocol: monitor/server.py)."""

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
                answered = True
                await self._error()(scope, receive, send)


BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class TokenBeforeBody:
    """A request that carries a body to a route that needs a token is refused (401) before one byte of its body is
    read, when its token is missing or not valid: the routes read a body whole into memory (up to the size limit),
    and nobody without a token may make the server hold that. A valid token's principal is kept on the request
    (`scope["state"]["principal"]`) for the route's access check, so the token is looked up once."""

    def __init__(self, app: ASGIApp, routes: Callable[[], list[Any]],
                 authenticate: Callable[[Request], Any]) -> None:
        self.app = app
        self.routes = routes
        self.authenticate = authenticate
        self._needs: dict[tuple[str, str], bool] = {}  # (method, path): whether a token is required (bounded)

    def needs_token(self, method: str, path: str) -> bool:
        known = self._needs.get((method, path))
        if known is not None:
            return known
        needs = False
        for context in iter_route_contexts(self.routes()):
            route = context.route
            if isinstance(route, APIRoute) and method in (route.methods or ()) and route.path_regex.match(path):
                needs = bool(declared_roles(route.dependant))  # () is a public route, None declares nothing
                break
        if len(self._needs) < 10_000:  # paths with ids vary: a bounded memo, then the routes are matched again
            self._needs[(method, path)] = needs
        return needs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS or not _has_body(scope) \
                or not self.needs_token(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            principal = await run_in_threadpool(self.authenticate, Request(scope))
        except ApiError as exc:
            await JSONResponse(exc.to_body(), status_code=exc.status, headers={**exc.headers, "Connection": "close"})(
                scope, receive, send)
            return
        except Exception:  # noqa: BLE001 - a database fault: the route's own check answers it (503, Retry-After)
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {}).update(principal=principal, principal_at=time.monotonic())
        await self.app(scope, receive, send)


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; "
    "connect-src 'self' blob:; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """Every HTTP response carries a strict Content-Security-Policy (nothing but this server's own scripts, no
    framing) and the usual hardening headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


_FIELD_MESSAGES = {  # pydantic's error types in zh-CN; `{…}` are filled from the error's context
    "missing": "缺少字段",
    "float_parsing": "必须是数字",
    "float_type": "必须是数字",
    "finite_number": "必须是有限的数字",
    "int_parsing": "必须是整数",
    "int_type": "必须是整数",
    "int_from_float": "必须是整数",
    "int_parsing_size": "超出整数范围",
    "bool_parsing": "必须是 true 或 false",
    "bool_type": "必须是 true 或 false",
    "string_type": "必须是文本",
    "string_unicode": "必须是有效的 UTF-8 文本",
    "string_too_long": "最多 {max_length} 个字符",
    "string_too_short": "至少 {min_length} 个字符",
    "string_pattern_mismatch": "格式不符合要求",
    "too_long": "最多 {max_length} 项",
    "too_short": "至少 {min_length} 项",
    "greater_than": "须大于 {gt}",
    "greater_than_equal": "须不小于 {ge}",
    "less_than": "须小于 {lt}",
    "less_than_equal": "须不大于 {le}",
    "multiple_of": "须为 {multiple_of} 的倍数",
    "list_type": "必须是列表",
    "set_type": "必须是列表",
    "tuple_type": "必须是列表",
    "dict_type": "必须是 JSON 对象",
    "model_type": "必须是 JSON 对象",
    "model_attributes_type": "必须是 JSON 对象",
    "extra_forbidden": "不是可接受的字段",
    "enum": "取值须为 {expected} 之一",
    "literal_error": "取值须为 {expected} 之一",
    "date_parsing": "不是有效的日期（YYYY-MM-DD）",
    "date_type": "不是有效的日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "不是有效的日期（YYYY-MM-DD）",
    "date_from_datetime_inexact": "须是日期，不含时刻（YYYY-MM-DD）",
    "datetime_parsing": "不是有效的时间（ISO 8601，如 2026-03-02T08:30:00+08:00）",
    "datetime_type": "不是有效的时间（ISO 8601，如 2026-03-02T08:30:00+08:00）",
    "datetime_from_date_parsing": "不是有效的时间（ISO 8601，如 2026-03-02T08:30:00+08:00）",
    "datetime_object_invalid": "不是有效的时间",
    "timezone_aware": "须带时区（如 +08:00）",
    "timezone_naive": "不能带时区",
    "time_parsing": "不是有效的时刻（HH:MM）",
    "time_type": "不是有效的时刻（HH:MM）",
    "uuid_parsing": "不是有效的编号",
    "uuid_type": "不是有效的编号",
    "json_invalid": "不是有效的 JSON",
    "json_type": "不是有效的 JSON",
    "bytes_type": "必须是文件或文本",
    "is_instance_of": "类型不正确",
    "union_tag_invalid": "取值无效",
    "union_tag_not_found": "缺少区分类型的字段",
}
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _expected_in_chinese(expected: object) -> str:
    """pydantic's "'a', 'b' or 'c'" as "a、b、c"."""
    return re.sub(r"'([^']*)'", r"\1", str(expected)).replace(" or ", "、").replace(", ", "、")


def describe_field_error(error: dict[str, Any]) -> str:
    """One validation error as a zh-CN phrase about its field (never pydantic's English: our own validators say
    theirs in Chinese; anything else is 取值无效)."""
    kind = error.get("type", "")
    context = dict(error.get("ctx") or {})
    if "expected" in context:
        context["expected"] = _expected_in_chinese(context["expected"])
    template = _FIELD_MESSAGES.get(kind)
    if template is not None:
        try:
            return template.format(**context)
        except (KeyError, IndexError, ValueError):  # a context this version of pydantic does not give
            return "取值无效"
    message = str(error.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if message.startswith("Expected UploadFile"):
        return "必须是上传的文件"
    return f"无效：{message}" if _CJK.search(message) else "取值无效"


def describe_validation_errors(errors: list[dict[str, Any]]) -> tuple[str, str, list[dict[str, Any]]]:
    """A stable code, a zh-CN sentence and per-field details for FastAPI's validation errors."""
    parts = []
    details = []
    missing = all(e.get("type") == "missing" for e in errors)
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path", "header", "form")]
        kind = e.get("type", "")
        field = ".".join(loc) or "请求正文"
        if kind == "json_invalid":  # its location is the offset in the body where parsing stopped, not a field
            where = f"（约第 {int(loc[0]) + 1} 个字符处）" if loc and loc[0].isdigit() else ""
            field = "请求正文"
            parts.append(f"请求正文不是有效的 JSON{where}")
        elif kind == "missing":
            parts.append(f"缺少字段 {field}")
        elif not loc:
            parts.append(f"请求正文{describe_field_error(e)}")
        else:
            parts.append(f"字段 {field} {describe_field_error(e)}")
        details.append({"field": field, "type": kind})
    return ("MISSING_FIELD" if missing else "INVALID_FIELD"), "；".join(parts), details


RETRY_AFTER_S = 5  # seconds a client waits before retrying while the database or the bus is unavailable


def database_unavailable() -> JSONResponse:
    """503 with Retry-After: the database cannot be reached now (what was committed stays)."""
    return JSONResponse({"code": "DATABASE_UNAVAILABLE",
                         "message": "数据库暂时不可用，请稍后重试（已提交的内容不会丢失）"},
                        status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def is_unavailable(exc: DBAPIError) -> bool:
    """Whether a database error means "not reachable now" (connection lost or refused, server shutting down, SQLite
    locked past its busy timeout), not a mistake in the request or the code."""
    if exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError) and STATEMENT_FAULTS.search(str(exc.orig)):
        return False  # SQLite names these operational too, but no retry will cure them: a fault of ours, a 500
    return isinstance(exc, OperationalError | InterfaceError)


STATEMENT_FAULTS = re.compile(r"too many SQL variables|Expression tree is too large|too many terms|no such "
                              r"(table|column|function)|syntax error|string or blob too big")
"""SQLite's OperationalError texts that are about the statement, not the database being reachable."""


def install_error_handlers(app: FastAPI, page_not_found: Callable[[Request], Response | None] | None = None) -> None:
    """The JSON error answers (ErrorBody's shape). `page_not_found`: what a person's browser gets for an address that
    is no page (an HTML page, or None for the JSON answer, as every API client and /api/ path gets)."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.to_body(), status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        code, message, details = describe_validation_errors(list(exc.errors()))
        return JSONResponse({"code": code, "message": message, "detail": {"fields": details}}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and page_not_found is not None:
            page = page_not_found(request)
            if page is not None:
                return page
        names = {
            400: ("MALFORMED_REQUEST", "请求格式无法解析（表单不完整或格式错误）"),
            404: ("NOT_FOUND", "请求的地址不存在"),
            405: ("METHOD_NOT_ALLOWED", "不支持该请求方法"),
        }
        code, message = names.get(exc.status_code, ("HTTP_ERROR", str(exc.detail)))
        return JSONResponse({"code": code, "message": message}, status_code=exc.status_code)

    @app.exception_handler(DBAPIError)
    async def database_error(_request: Request, exc: DBAPIError) -> JSONResponse:
        if not is_unavailable(exc):
            raise exc
        log.warning("database unavailable: %s", type(exc.orig).__name__ if exc.orig else type(exc).__name__)
        return database_unavailable()

    @app.exception_handler(PendingRollbackError)
    async def connection_cut(_request: Request, _exc: PendingRollbackError) -> JSONResponse:
        # raised instead of the cut's own error when something touches the connection while it is rolled back
        log.warning("database unavailable: connection cut mid-transaction")
        return database_unavailable()

    @app.exception_handler(SATimeoutError)
    async def pool_timeout(_request: Request, _exc: SATimeoutError) -> JSONResponse:
        return JSONResponse({"code": "DATABASE_BUSY", "message": "数据库连接繁忙，请稍后重试"}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(RedisError)
    async def bus_error(_request: Request, exc: RedisError) -> JSONResponse:
        log.warning("bus unavailable: %s", type(exc).__name__)
        return JSONResponse({"code": "BUS_UNAVAILABLE", "message": "消息总线暂时不可用，请稍后重试"}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(OSError)
    async def storage_error(_request: Request, exc: OSError) -> JSONResponse:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise exc
        log.error("evidence storage full: %s", exc.strerror)
        return JSONResponse({"code": "STORAGE_FULL",
                             "message": "存储空间不足，本次上传未保存，请通知监控中心扩容后重试"},
                            status_code=507, headers={"Retry-After": "60"})

    @app.exception_handler(json.JSONDecodeError)
    async def json_error(_request: Request, _exc: json.JSONDecodeError) -> JSONResponse:
        return JSONResponse({"code": "INVALID_JSON", "message": "请求体不是有效的 JSON"}, status_code=422)


ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def _error_response(status: int) -> dict[str, Any]:
    return {"description": ERROR_DESCRIPTIONS[status], "content": {"application/json": {"schema": ERROR_REF}}}


def document_errors(schema: dict[str, Any], roles: dict[tuple[str, str], tuple[Role, ...] | None]) -> None:
    """Make the OpenAPI schema tell the truth about errors: every 4xx answers with ErrorBody, and each operation
    lists the statuses it can return — 401/403 where a token is needed, 404 where a path names an object, 413
    where there is a body, 400/415 for multipart uploads, plus what routes declare themselves (409, 429)."""
    schema.setdefault("components", {}).setdefault("schemas", {})["ErrorBody"] = ErrorBody.model_json_schema()
    for name in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(name, None)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            declared = roles.get((method.upper(), path))
            statuses = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
            if declared != ():
                statuses |= {401, 403}
            if "{" in path:
                statuses.add(404)
            if method in ("post", "put", "patch"):
                statuses |= {400, 413}  # a body that cannot be parsed; one over the size limit
            body = operation.get("requestBody", {}).get("content", {})
            if "multipart/form-data" in body:
                statuses.add(415)
            if operation.get("parameters") or body:
                statuses.add(422)
            statuses.add(503)  # the database or the bus unavailable (Retry-After)
            if method in ("post", "put", "patch"):
                statuses.add(507)  # evidence storage full
            for status in sorted(statuses):
                responses[str(status)] = _error_response(status)


def install_openapi(app: FastAPI) -> None:
    """Generate the schema once, with the errors documented (see document_errors)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            roles: dict[tuple[str, str], tuple[Role, ...] | None] = {}
            for context in iter_route_contexts(app.routes):
                route = context.route
                if isinstance(route, APIRoute):
                    for method in route.methods or ():
                        roles[(method, route.path)] = declared_roles(route.dependant)
            document_errors(schema, roles)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
