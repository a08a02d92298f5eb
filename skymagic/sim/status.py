"""The API server's error answers: a `Status` body, raised as `HTTPStatus` by any handler.

The handlers raise; `ApiServer.handle` turns the exception into the JSON answer, with the
reason, message and details a real API server gives for the same failure.
"""

from __future__ import annotations

from typing import Any

import msgspec

from skymagic.sim.http import Request

__all__ = [
    "HTTPStatus",
    "json_body",
    "method_not_allowed",
    "no_such_path",
    "not_found",
    "status_body",
]


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class HTTPStatus(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        extra_meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.body = status_body(code, reason, message, details)
        if extra_meta:
            self.body["metadata"].update(extra_meta)


def not_found(resource: str, name: str) -> HTTPStatus:
    """404 for a named object that does not exist."""
    return HTTPStatus(
        404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource}
    )


def no_such_path() -> HTTPStatus:
    """404 for a path the server does not serve at all."""
    return HTTPStatus(404, "NotFound", "the server could not find the requested resource")


def method_not_allowed() -> HTTPStatus:
    return HTTPStatus(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def json_body(req: Request, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object (`{}` for no body when `optional`); 400 otherwise."""
    if not req.body:
        if optional:
            return {}
        raise HTTPStatus(400, "BadRequest", "the request body is empty")
    try:
        data = msgspec.json.decode(req.body)
    except msgspec.DecodeError as exc:
        raise HTTPStatus(400, "BadRequest", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HTTPStatus(400, "BadRequest", "the body must be a JSON object")
    return data
