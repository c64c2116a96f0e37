"""The error tree: each class carries Paddle's status, type and code, and renders the Paddle envelope.

The table is paddle-api.md §4.3 (shared error codes); ``documentation_url`` follows the observed
``/v1/errors/<group>/<code>`` form of live responses (§4.2).
"""

from __future__ import annotations

from typing import cast

import pytest

from keyhouse.domain import errors
from keyhouse.domain.errors import (
    AuthenticationMalformed,
    AuthenticationMissing,
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    InvalidClientToken,
    InvalidField,
    InvalidJson,
    InvalidTimeQueryParameter,
    InvalidToken,
    InvalidUrl,
    KeyhouseError,
    MethodNotAllowed,
    NotFound,
    NotificationCannotReplay,
    NotificationError,
    NotificationMaximumActiveSettingsReached,
    NotificationReplayInvalidOriginType,
    RequestBodyTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    UrlNotificationSettingIncorrect,
)

REQUEST_ID = "00000000-0000-0000-0000-000000000000"

# class, HTTP status, type, code, default detail (Paddle's exact text where keyhouse keeps it)
TABLE = [
    (KeyhouseError, 500, "api_error", "internal_error", None),
    (AuthenticationMissing, 403, "request_error", "authentication_missing", "Authentication header missing."),
    (
        AuthenticationMalformed,
        403,
        "request_error",
        "authentication_malformed",
        "Authentication header included, but incorrectly formatted.",
    ),
    (InvalidToken, 403, "request_error", "invalid_token", "Invalid or revoked API key."),
    (
        InvalidClientToken,
        403,
        "request_error",
        "invalid_client_token",
        "Invalid, revoked or expired client-side token.",
    ),
    (Forbidden, 403, "request_error", "forbidden", "You aren't permitted to perform this request."),
    (NotFound, 404, "request_error", "not_found", None),
    (InvalidUrl, 404, "request_error", "invalid_url", "URL called is invalid."),
    (
        MethodNotAllowed,
        405,
        "request_error",
        "method_not_allowed",
        "HTTP method used isn't allowed for this endpoint.",
    ),
    (BadRequest, 400, "request_error", "bad_request", "Invalid request."),
    (InvalidJson, 400, "request_error", "invalid_json", "Invalid JSON in your request."),
    (InvalidField, 400, "request_error", "invalid_field", "Request does not pass validation."),
    (Conflict, 409, "request_error", "conflict", "Request conflicts with another change."),
    (
        RequestBodyTooLarge,
        413,
        "request_error",
        "request_body_too_large",
        "The provided request body is too large.",
    ),
    (
        TooManyRequests,
        429,
        "api_error",
        "too_many_requests",
        "IP address exceeded the allowed rate limit. "
        "Retry after the number of seconds in the Retry-After header.",
    ),
    (ServiceUnavailable, 503, "api_error", "service_unavailable", None),
    (
        InvalidTimeQueryParameter,
        400,
        "request_error",
        "invalid_time_query_parameter",
        "Invalid timestamp as a query parameter.",
    ),
    # Paddle's notification codes (statuses unconfirmed: every one is a mistake in the request)
    (NotificationError, 400, "request_error", "bad_request", None),
    (UrlNotificationSettingIncorrect, 400, "request_error", "url_notification_setting_incorrect", None),
    (
        NotificationMaximumActiveSettingsReached,
        400,
        "request_error",
        "notification_maximum_active_settings_reached",
        None,
    ),
    (NotificationCannotReplay, 400, "request_error", "notification_cannot_replay", None),
    (
        NotificationReplayInvalidOriginType,
        400,
        "request_error",
        "notification_replay_invalid_origin_type",
        None,
    ),
]
NOTIFICATION_ERRORS = {row[0] for row in TABLE if issubclass(row[0], NotificationError)}
CLASSES = [row[0] for row in TABLE]


def error_object(error: KeyhouseError) -> dict[str, object]:
    return cast("dict[str, object]", error.envelope(REQUEST_ID)["error"])


def test_the_table_lists_every_error_class_in_the_module() -> None:
    defined = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, KeyhouseError)
    }
    assert defined == set(CLASSES)


@pytest.mark.parametrize(("cls", "status", "type_", "code", "detail"), TABLE)
def test_each_error_carries_paddles_status_type_and_code(
    cls: type[KeyhouseError], status: int, type_: str, code: str, detail: str | None
) -> None:
    error = cls()
    assert (error.status, error.type, error.code) == (status, type_, code)
    if detail is not None:
        assert error.detail == detail


@pytest.mark.parametrize("cls", CLASSES)
def test_each_envelope_has_type_code_detail_documentation_url_and_the_request_id(
    cls: type[KeyhouseError],
) -> None:
    error = cls()
    group = "notifications" if cls in NOTIFICATION_ERRORS else "shared"
    assert error.envelope(REQUEST_ID) == {
        "error": {
            "type": error.type,
            "code": error.code,
            "detail": error.detail,
            "documentation_url": f"https://developer.paddle.com/v1/errors/{group}/{error.code}",
        },
        "meta": {"request_id": REQUEST_ID},
    }


@pytest.mark.parametrize("cls", CLASSES)
def test_every_error_is_a_keyhouse_error_whose_message_is_its_detail(cls: type[KeyhouseError]) -> None:
    error = cls()
    assert isinstance(error, KeyhouseError)
    assert error.detail
    assert str(error) == error.detail


def test_a_given_detail_replaces_the_default() -> None:
    error = NotFound("API key apikey_01jkdpbhazdpn3wpcya45as9tg not found.")
    assert error_object(error)["detail"] == "API key apikey_01jkdpbhazdpn3wpcya45as9tg not found."


def test_an_empty_detail_falls_back_to_the_default() -> None:
    assert Forbidden("").detail == "You aren't permitted to perform this request."


def test_field_errors_are_listed_only_when_given() -> None:
    error = InvalidField(
        errors=[FieldError("name", "must be provided as part of the request"), FieldError("key", "bad")]
    )
    assert error_object(error)["errors"] == [
        {"field": "name", "message": "must be provided as part of the request"},
        {"field": "key", "message": "bad"},
    ]
    assert "errors" not in error_object(InvalidField())


def test_invalid_field_on_names_one_field_and_one_message() -> None:
    error = InvalidField.on("expires_at", "must be in the future")
    assert error.errors == [FieldError("expires_at", "must be in the future")]
    assert error.detail == "Request does not pass validation."


def test_invalid_json_is_a_bad_request() -> None:
    assert isinstance(InvalidJson(), BadRequest)


def test_too_many_requests_says_when_to_retry() -> None:
    assert TooManyRequests().retry_after == 60
    limited = TooManyRequests("Slow down.", retry_after=7)
    assert (limited.retry_after, limited.detail) == (7, "Slow down.")
