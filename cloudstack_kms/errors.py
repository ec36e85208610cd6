"""CloudStack's error codes, and the one place that maps exceptions to them.

Every error a client sees is an :class:`ApiError`: an HTTP status equal to ``errorcode``,
a ``cserrorcode`` naming the exception class upstream would have thrown, and a text.
Backend exception texts never reach ``errortext``; they are logged instead.
"""
from __future__ import annotations

# ApiErrorCode
UNAUTHORIZED = 401
METHOD_NOT_ALLOWED = 405
MALFORMED_PARAMETER_ERROR = 430
PARAM_ERROR = 431
UNSUPPORTED_ACTION_ERROR = 432
INTERNAL_ERROR = 530
ACCOUNT_ERROR = 531
RESOURCE_UNAVAILABLE_ERROR = 534
RESOURCE_IN_USE_ERROR = 536

# CSExceptionErrorCode
CS_SERVER_API = 9999
CS_CLOUD_RUNTIME = 4250
CS_INVALID_PARAMETER = 4350
CS_PERMISSION_DENIED = 4365
CS_RESOURCE_IN_USE = 4375
CS_RESOURCE_UNAVAILABLE = 4380

VERIFY_FAILED_TEXT = "unable to verify user credentials and/or request signature"
GENERIC_INTERNAL_TEXT = "Internal error executing command, please contact your system administrator"


class ApiError(Exception):
    """An error answered to the client. ``cserrorcode`` None means the field is left out."""

    code = INTERNAL_ERROR
    cserrorcode: int | None = CS_SERVER_API

    def __init__(self, text: str, code: int | None = None, cserrorcode: int | None | bool = False) -> None:
        super().__init__(text)
        self.text = text
        if code is not None:
            self.code = code
        if cserrorcode is not False:
            self.cserrorcode = cserrorcode  # type: ignore[assignment]

    def as_job_result(self) -> dict:
        return {"errorcode": self.code, "errortext": self.text}


class ServerApiError(ApiError):
    """A ServerApiException raised without a cause (missing parameter, page rules ...)."""

    code = PARAM_ERROR
    cserrorcode = CS_SERVER_API


class InvalidParameterValue(ApiError):
    code = PARAM_ERROR
    cserrorcode = CS_INVALID_PARAMETER


class PermissionDenied(ApiError):
    code = ACCOUNT_ERROR
    cserrorcode = CS_PERMISSION_DENIED


class ResourceInUse(ApiError):
    code = RESOURCE_IN_USE_ERROR
    cserrorcode = CS_RESOURCE_IN_USE


class ResourceUnavailable(ApiError):
    code = RESOURCE_UNAVAILABLE_ERROR
    cserrorcode = CS_RESOURCE_UNAVAILABLE


class CloudRuntimeError(ApiError):
    """A failure inside the server or a provider (530)."""

    code = INTERNAL_ERROR
    cserrorcode = CS_CLOUD_RUNTIME


class Unauthorized(ApiError):
    """401 from the verifier: CloudStack builds it from a bare code, so no ``cserrorcode``."""

    code = UNAUTHORIZED
    cserrorcode = None

    def __init__(self, text: str = VERIFY_FAILED_TEXT) -> None:
        super().__init__(text)


class UnsupportedAction(ApiError):
    code = UNSUPPORTED_ACTION_ERROR
    cserrorcode = CS_SERVER_API


def missing_parameter(api: str, param: str) -> ServerApiError:
    return ServerApiError(f"Unable to execute API command {api.lower()} due to missing parameter {param}")


def invalid_value(api: str, param: str, value: object) -> ServerApiError:
    return ServerApiError(f"Unable to execute API command {api.lower()} due to invalid value {value} for parameter {param}")


def invalid_uuid(api: str, param: str, value: object) -> ServerApiError:
    return ServerApiError(
        f"Unable to execute API command {api.lower()} due to invalid value. Invalid parameter {param} "
        f"value={value} due to incorrect long value format, or entity does not exist or due to incorrect "
        "parameter annotation for the field in api cmd class."
    )


def too_long(api: str, param: str, length: int) -> ServerApiError:
    return ServerApiError(
        f"Unable to execute API command {api.lower()} due to invalid value. "
        f"Value greater than max allowed length {length} for param: {param}"
    )
