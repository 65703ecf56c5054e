"""Business Central's error answers: status, ``error.code`` and message.

The envelope is ``{"error": {"code": ..., "message": "<text>  CorrelationId:  <guid>."}}``
with the id equal to the ``request-id`` header (recorded, see ``docs/business-central.md``);
routing errors and errors inside a ``$batch`` carry no CorrelationId suffix.
"""

from __future__ import annotations

from typing import Any


class BcError(Exception):
    """An answer BC gives instead of a result: HTTP status, BC's code and message."""

    def __init__(self, status: int, code: str, message: str, *, correlation: bool = True,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.correlation = correlation
        self.headers = headers or {}

    def body(self, request_id: str | None) -> dict[str, Any]:
        message = self.message
        if self.correlation and request_id:
            message = f"{message}  CorrelationId:  {request_id}."
        return {"error": {"code": self.code, "message": message}}


def not_found_segment(segment: str) -> BcError:
    """An unknown or deleted key (recorded: GET of a deleted customer)."""
    return BcError(404, "BadRequest_ResourceNotFound",
                   f"Resource not found for the segment '{segment}'.")


def no_resource(url: str) -> BcError:
    """A URL no route answers (an unknown entity set, an unpublished page)."""
    return BcError(404, "BadRequest_NotFound",
                   f"No HTTP resource was found that matches the request URI '{url}'.",
                   correlation=False)


def query_syntax() -> BcError:
    """A malformed key such as ``customers(None)`` (recorded inside a batch)."""
    return BcError(404, "BadRequest_NotFound", "Bad Request - Error in query syntax.")


def bad_request(message: str) -> BcError:
    return BcError(400, "BadRequest", message)


def dialog(message: str) -> BcError:
    """An AL ``Error()`` raised by the page or table code."""
    return BcError(400, "Application_DialogException", message)


def string_too_long(value: str, limit: int) -> BcError:
    return BcError(400, "Application_StringExceededLength",
                   f"The length of the string is {len(value)}, but it must be less than or "
                   f"equal to {limit} characters. Value: {value}")


def unknown_property(name: str, type_name: str) -> BcError:
    return bad_request(f"Could not find a property named '{name}' on type "
                       f"'Microsoft.NAV.{type_name}'.")


def missing_if_match() -> BcError:
    return BcError(400, "BadRequest_InvalidToken",
                   "Could not validate the client concurrency token required by the service. "
                   "Please provide a valid token in the client request.")


def entity_changed() -> BcError:
    return BcError(409, "Request_EntityChanged", "Another user has already changed the record.")


def invalid_credentials() -> BcError:
    return BcError(401, "Authentication_InvalidCredentials",
                   "The server has rejected the client credentials.")


def method_not_allowed(method: str, segment: str, kind: str) -> BcError:
    return BcError(405, "BadRequest_MethodNotAllowed",
                   f"'{method}' requests for '{segment}' of EdmType '{kind}' are not allowed "
                   "within Dynamics 365 Business Central OData web services.")
