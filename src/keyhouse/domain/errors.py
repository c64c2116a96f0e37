"""Every error keyhouse reports, each carrying its Paddle error code and HTTP status.

::

    KeyhouseError                       500 internal_error (api_error)
    ├── AuthenticationMissing           403 authentication_missing
    ├── AuthenticationMalformed         403 authentication_malformed
    ├── InvalidToken                    403 invalid_token
    ├── InvalidClientToken              403 invalid_client_token
    ├── Forbidden                       403 forbidden
    ├── NotFound                        404 not_found
    ├── InvalidUrl                      404 invalid_url
    ├── MethodNotAllowed                405 method_not_allowed
    ├── BadRequest                      400 bad_request
    │   ├── InvalidJson                 400 invalid_json
    │   └── InvalidTimeQueryParameter   400 invalid_time_query_parameter
    ├── InvalidField                    400 invalid_field  (+ errors[]: field, message)
    ├── Conflict                        409 conflict
    ├── NotificationError               400 (Paddle's notification codes, below)
    │   ├── UrlNotificationSettingIncorrect          url_notification_setting_incorrect
    │   ├── NotificationMaximumActiveSettingsReached notification_maximum_active_settings_reached
    │   ├── NotificationCannotReplay                 notification_cannot_replay
    │   └── NotificationReplayInvalidOriginType      notification_replay_invalid_origin_type
    ├── RequestBodyTooLarge             413 request_body_too_large
    ├── TooManyRequests                 429 too_many_requests (api_error, + retry_after)
    └── ServiceUnavailable              503 service_unavailable (api_error)

The web layer renders any of them in the Paddle envelope; the CLI prints the same envelope under
``--json`` and exits 1. Classes hold no framework import, so every layer may raise them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class KeyhouseError(Exception):
    code = "internal_error"
    status = 500
    type = "api_error"
    default_detail = "Problem processing your request. The keyhouse operator has been notified."
    #: Paddle groups its error pages; only the shared group is used so far.
    doc_group = "shared"

    def __init__(self, detail: str | None = None, *, errors: list[FieldError] | None = None) -> None:
        self.detail = detail or self.default_detail
        self.errors = errors
        super().__init__(self.detail)

    @property
    def documentation_url(self) -> str:
        return f"https://developer.paddle.com/v1/errors/{self.doc_group}/{self.code}"

    def envelope(self, request_id: str) -> dict[str, object]:
        """The Paddle error object, with every field the official SDKs index directly."""
        error: dict[str, object] = {
            "type": self.type,
            "code": self.code,
            "detail": self.detail,
            "documentation_url": self.documentation_url,
        }
        if self.errors is not None:
            error["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return {"error": error, "meta": {"request_id": request_id}}


class AuthenticationMissing(KeyhouseError):
    code, status, type = "authentication_missing", 403, "request_error"
    default_detail = "Authentication header missing."


class AuthenticationMalformed(KeyhouseError):
    code, status, type = "authentication_malformed", 403, "request_error"
    default_detail = "Authentication header included, but incorrectly formatted."


class InvalidToken(KeyhouseError):
    code, status, type = "invalid_token", 403, "request_error"
    default_detail = "Invalid or revoked API key."


class InvalidClientToken(KeyhouseError):
    code, status, type = "invalid_client_token", 403, "request_error"
    default_detail = "Invalid, revoked or expired client-side token."


class Forbidden(KeyhouseError):
    code, status, type = "forbidden", 403, "request_error"
    default_detail = "You aren't permitted to perform this request."


class NotFound(KeyhouseError):
    code, status, type = "not_found", 404, "request_error"
    default_detail = "Entity not found."


class InvalidUrl(KeyhouseError):
    code, status, type = "invalid_url", 404, "request_error"
    default_detail = "URL called is invalid."


class MethodNotAllowed(KeyhouseError):
    code, status, type = "method_not_allowed", 405, "request_error"
    default_detail = "HTTP method used isn't allowed for this endpoint."


class BadRequest(KeyhouseError):
    code, status, type = "bad_request", 400, "request_error"
    default_detail = "Invalid request."


class InvalidJson(BadRequest):
    code = "invalid_json"
    default_detail = "Invalid JSON in your request."


class InvalidTimeQueryParameter(BadRequest):
    code = "invalid_time_query_parameter"
    default_detail = "Invalid timestamp as a query parameter."


class InvalidField(KeyhouseError):
    code, status, type = "invalid_field", 400, "request_error"
    default_detail = "Request does not pass validation."

    @classmethod
    def on(cls, field: str, message: str) -> InvalidField:
        """The common case: one field, one message."""
        return cls(errors=[FieldError(field, message)])


class Conflict(KeyhouseError):
    code, status, type = "conflict", 409, "request_error"
    default_detail = "Request conflicts with another change."


class NotificationError(KeyhouseError):
    """Paddle documents these codes (statuses unconfirmed); all are mistakes in the request: 400."""

    code, status, type = "bad_request", 400, "request_error"
    doc_group = "notifications"


class UrlNotificationSettingIncorrect(NotificationError):
    code = "url_notification_setting_incorrect"
    default_detail = "The destination URL of the notification setting is not valid."


class NotificationMaximumActiveSettingsReached(NotificationError):
    code = "notification_maximum_active_settings_reached"
    default_detail = "The maximum number of active notification settings has been reached."


class NotificationCannotReplay(NotificationError):
    code = "notification_cannot_replay"
    default_detail = "Only delivered or failed notifications can be replayed."


class NotificationReplayInvalidOriginType(NotificationError):
    code = "notification_replay_invalid_origin_type"
    default_detail = "Only notifications with the origin `event` can be replayed."


class RequestBodyTooLarge(KeyhouseError):
    code, status, type = "request_body_too_large", 413, "request_error"
    default_detail = "The provided request body is too large."


class TooManyRequests(KeyhouseError):
    code, status, type = "too_many_requests", 429, "api_error"
    default_detail = (
        "IP address exceeded the allowed rate limit. "
        "Retry after the number of seconds in the Retry-After header."
    )

    def __init__(self, detail: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ServiceUnavailable(KeyhouseError):
    code, status, type = "service_unavailable", 503, "api_error"
    default_detail = "Endpoint is down temporarily and can't process your request."
