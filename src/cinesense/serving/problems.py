"""Every error the service answers is a :class:`~cinesense.serving.schemas.Problem` body."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from cinesense.serving.batching import NotReadyError
from cinesense.serving.errors import describe_validation_errors
from cinesense.serving.logs import request_id
from cinesense.serving.schemas import Problem

log = logging.getLogger("cinesense.serving")

# OpenAPI: the error answers an endpoint that takes a body may give.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 415, 422, 503)
}


def problem(
    status: int, message: str, problems: list[str] | None = None, headers: Any = None
) -> JSONResponse:
    body = Problem(error=message, problems=problems or [], request_id=request_id.get())
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        status, message, problems = describe_validation_errors(error.errors(), request.url.path)
        return problem(status, message, problems)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return problem(error.status_code, str(error.detail), headers=error.headers)

    @app.exception_handler(NotReadyError)
    async def not_ready(request: Request, error: NotReadyError) -> JSONResponse:
        return problem(503, f"No model is loaded yet: {error}", headers={"Retry-After": "10"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, "Internal error; the request id identifies it in the logs.")
