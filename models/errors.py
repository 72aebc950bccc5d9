"""The one error type every API path raises: an HTTP status, a stable code and a zh-CN message."""


class ApiError(Exception):
    """A client-facing error: `code` is stable English, `message` is for people (zh-CN)."""

    def __init__(self, status: int, code: str, message: str, **detail: object) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail

    def to_body(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body
