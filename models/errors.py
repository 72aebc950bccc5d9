"""The one error type every API path raises: an HTTP status, a stable code and a zh-CN message."""

from typing import Any

from pydantic import BaseModel, Field


class ApiError(Exception):
    """A client-facing error: `code` is stable English, `message` is for people (zh-CN)."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                 **detail: object) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers or {}

    def to_body(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body


class ErrorBody(BaseModel):
    """What every 4xx answer carries (the OpenAPI schema documents it for each status a route can return)."""

    code: str = Field(description="stable English code, e.g. UNKNOWN_CLASS")
    message: str = Field(description="what is wrong, in Simplified Chinese, for people")
    detail: dict[str, Any] | None = Field(default=None, description="machine-readable specifics, e.g. fields")


ERROR_DESCRIPTIONS = {
    400: "请求格式无法解析 (malformed request)",
    401: "缺少或无效的访问令牌 (no valid token)",
    403: "当前身份无权访问 (role or scope forbids it)",
    404: "对象不存在或不在权限范围内 (not found, or outside the caller's scope)",
    409: "与已有记录冲突 (conflict: replay, duplicate, already decided)",
    410: "证据文件与登记的校验码不符或已缺失，已记录并告警 (evidence file altered or missing)",
    413: "上传内容过大 (body or image too large)",
    415: "不支持的图片格式 (unsupported image format)",
    422: "字段无效 (invalid field)",
    429: "请求过于频繁 (rate limited)",
    503: "服务暂时不可用，请按 Retry-After 稍后重试 (database or bus unavailable)",
    507: "存储空间不足 (evidence storage full)",
}


FILE_SCHEMA = {"type": "string", "format": "binary"}


def file_response(*media_types: str, description: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route answering with a file (Excel, CSV, a photo) instead of JSON."""
    return {200: {"description": description, "content": {m: {"schema": FILE_SCHEMA} for m in media_types}}}


UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "重复提交（同一 Idempotency-Key）：返回首次受理的结果，duplicate=true"},
    201: {"description": "已受理并完成核验：status 为 passed、failed 或 review，message 说明原因"},
    202: {"description": "已受理，核验尚未完成：status 为 pending，稍后查询 status_url"},
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: these statuses answer with ErrorBody."""
    return {status: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]} for status in statuses}
