"""The API key lifecycle, pure (paddle-api.md §2.4): the expiry job's rule, the refusal of a key
revoked for exposure, and secret-scanning reports (GitHub's partner format) turned into exposures.

``expiry_work`` sends ``api_key.expiring`` once, 7 days ahead, and ``api_key.expired`` with the status
change; a key first seen past its expiry gets only ``expired``. A leaked key that still works is a
high-risk exposure and is revoked; one already revoked or expired is low risk and nothing is done.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyhouse.domain import exposures, keys
from keyhouse.domain.accounts import Environment
from keyhouse.domain.credentials import Pepper
from keyhouse.domain.exposures import (
    REPORT_MAX_TOKENS,
    ActionTaken,
    ExposureSource,
    ReportedToken,
    RiskLevel,
    github_exposure,
    parse_report,
    report_answer,
)
from keyhouse.domain.ids import is_id
from keyhouse.domain.keys import EXPIRING_NOTICE, ApiKey, KeyStatus, expiry_work, refusal_detail
from keyhouse.domain.permissions import Permission
from keyhouse.domain.times import rfc3339

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
URL = "https://github.com/acme/shop/blob/3f1c2d/config.js"
MATCH = {"token": "pdl_sdbx_apikey_x", "type": "paddle_api_key", "url": URL, "source": "content"}


def a_key(**overrides: Any) -> ApiKey:
    """A sandbox key issued at NOW, any field overridden."""
    key, _, _ = keys.issue_key(
        account_id="acc_" + "a" * 26,
        environment=Environment.SANDBOX,
        name="CRM",
        description=None,
        permissions=frozenset({Permission.PRODUCT_READ}),
        expires_at=None,
        rotatable=False,
        now=NOW,
        pepper=Pepper(b"pepper-" + b"x" * 32),
    )
    return dataclasses.replace(key, **overrides)


def expiring_in(delta: timedelta, **overrides: Any) -> ApiKey:
    return a_key(expires_at=NOW + delta, **overrides)


def reported(**overrides: str) -> ReportedToken:
    fields = {**MATCH, **overrides}
    return ReportedToken(fields["token"], fields["type"], fields["url"], fields["source"])


# --- the expiry job's rule ------------------------------------------------------------------------


def test_the_expiring_notice_goes_out_seven_days_ahead_as_paddle_says() -> None:
    assert timedelta(days=7) == EXPIRING_NOTICE


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(a_key(), id="never-expires"),
        pytest.param(keys.revoke(expiring_in(timedelta(days=1)), NOW), id="revoked-expiring-soon"),
        pytest.param(keys.revoke(expiring_in(-timedelta(days=1)), NOW), id="revoked-past-expiry"),
        pytest.param(expiring_in(-timedelta(days=1), status=KeyStatus.EXPIRED), id="already-expired"),
    ],
)
def test_a_key_that_is_not_active_or_never_expires_is_left_alone(key: ApiKey) -> None:
    after, emitted = expiry_work(key, NOW)
    assert after is key
    assert emitted == []


def test_a_key_at_its_expiry_becomes_expired_with_the_expired_event() -> None:
    noticed = NOW - timedelta(days=7)
    key = expiring_in(timedelta(0), expiring_noticed_at=noticed)
    after, emitted = expiry_work(key, NOW)
    assert emitted == ["expired"]
    assert after == dataclasses.replace(key, status=KeyStatus.EXPIRED, updated_at=NOW)
    assert after.expiring_noticed_at == noticed  # when the notice went out is kept


def test_a_key_one_microsecond_before_its_expiry_is_not_expired_yet() -> None:
    key = expiring_in(MICROSECOND, expiring_noticed_at=NOW - timedelta(days=7))
    assert expiry_work(key, NOW) == (key, [])


def test_a_key_past_its_expiry_that_was_never_noticed_gets_only_the_expired_event() -> None:
    key = expiring_in(-timedelta(days=2))
    after, emitted = expiry_work(key, NOW)
    assert emitted == ["expired"]  # "will expire" after the fact would be a lie
    assert (after.status, after.updated_at) == (KeyStatus.EXPIRED, NOW)
    assert after.expiring_noticed_at is not None  # and no notice follows later
    assert expiry_work(after, NOW + timedelta(days=1)) == (after, [])


@pytest.mark.parametrize(
    "left",
    [
        pytest.param(EXPIRING_NOTICE, id="exactly-7-days"),
        pytest.param(timedelta(days=3), id="3-days"),
        pytest.param(MICROSECOND, id="1-microsecond"),
    ],
)
def test_a_key_within_seven_days_of_expiry_not_yet_noticed_gets_the_expiring_event(left: timedelta) -> None:
    key = expiring_in(left)
    after, emitted = expiry_work(key, NOW)
    assert emitted == ["expiring"]
    # Only the internal mark changes: still active, and ``updated_at`` (on the wire) stays.
    assert after == dataclasses.replace(key, expiring_noticed_at=NOW)
    assert after.status_at(NOW) is KeyStatus.ACTIVE


def test_a_key_already_noticed_gets_nothing_more_until_it_expires() -> None:
    key = expiring_in(timedelta(days=3), expiring_noticed_at=NOW - timedelta(days=4))
    assert expiry_work(key, NOW) == (key, [])
    assert expiry_work(key, NOW + timedelta(days=3) - MICROSECOND) == (key, [])


@pytest.mark.parametrize(
    "left",
    [pytest.param(EXPIRING_NOTICE + MICROSECOND, id="7-days-and-1-microsecond"), timedelta(days=90)],
)
def test_a_key_further_than_seven_days_from_expiry_is_left_alone(left: timedelta) -> None:
    key = expiring_in(left)
    after, emitted = expiry_work(key, NOW)
    assert after is key
    assert emitted == []


def test_a_key_goes_through_expiring_then_expired_exactly_once_each() -> None:
    key = expiring_in(timedelta(days=30))
    seen: list[str] = []
    for day in range(32):
        key, emitted = expiry_work(key, NOW + timedelta(days=day))
        seen += emitted
    assert seen == ["expiring", "expired"]
    assert key.status is KeyStatus.EXPIRED


# --- refusal of a key revoked for exposure --------------------------------------------------------


def test_a_key_revoked_because_it_was_exposed_is_refused_saying_so() -> None:
    key = keys.revoke(keys.mark_exposed(a_key(), NOW), NOW)
    assert refusal_detail(key, NOW + timedelta(hours=1)) == (
        f"This API key was revoked at {rfc3339(NOW)} because it was found exposed; create a new key."
    )


def test_a_key_revoked_for_exposure_says_so_even_past_its_expiry() -> None:
    key = keys.revoke(keys.mark_exposed(expiring_in(timedelta(days=1)), NOW), NOW)
    detail = refusal_detail(key, NOW + timedelta(days=2))
    assert detail is not None
    assert detail.endswith("because it was found exposed; create a new key.")


def test_a_key_exposed_only_after_it_was_revoked_is_refused_as_plainly_revoked() -> None:
    key = keys.mark_exposed(keys.revoke(a_key(), NOW), NOW + timedelta(minutes=1))
    assert refusal_detail(key, NOW + timedelta(hours=1)) == f"This API key was revoked at {rfc3339(NOW)}."


def test_an_exposed_key_that_expired_is_refused_as_expired_not_as_exposed() -> None:
    key = keys.mark_exposed(expiring_in(timedelta(hours=1)), NOW)
    expired = NOW + timedelta(hours=1)
    assert refusal_detail(key, expired) == f"This API key expired at {rfc3339(expired)}."


# --- secret-scanning reports ----------------------------------------------------------------------


def test_a_report_is_parsed_into_its_matches_in_order() -> None:
    second = {"token": "live_" + "a" * 27, "type": "paddle_client_token", "url": "", "source": "commit"}
    assert parse_report([MATCH, second]) == [
        reported(),
        ReportedToken("live_" + "a" * 27, "paddle_client_token", "", "commit"),
    ]


def test_fields_a_scanner_adds_to_a_match_are_ignored() -> None:
    assert parse_report([{**MATCH, "repository": "acme/shop", "line": 3}]) == [reported()]


def test_a_report_of_the_largest_size_is_accepted() -> None:
    assert len(parse_report([MATCH] * REPORT_MAX_TOKENS)) == REPORT_MAX_TOKENS


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(MATCH, id="an-object-not-a-list"),
        pytest.param("pdl_sdbx_apikey_x", id="a-string"),
        pytest.param(None, id="null"),
        pytest.param([], id="empty"),
        pytest.param([MATCH] * (REPORT_MAX_TOKENS + 1), id="too-many"),
    ],
)
def test_a_report_that_is_not_a_list_of_1_to_1000_matches_is_refused(body: object) -> None:
    with pytest.raises(ValueError, match="a report is a JSON list of 1 to 1000 matches"):
        parse_report(body)


@pytest.mark.parametrize(
    "item",
    [
        pytest.param("pdl_sdbx_apikey_x", id="a-string"),
        pytest.param([MATCH], id="a-list"),
        pytest.param(None, id="null"),
        pytest.param({k: v for k, v in MATCH.items() if k != "token"}, id="no-token"),
        pytest.param({k: v for k, v in MATCH.items() if k != "type"}, id="no-type"),
        pytest.param({k: v for k, v in MATCH.items() if k != "url"}, id="no-url"),
        pytest.param({k: v for k, v in MATCH.items() if k != "source"}, id="no-source"),
        pytest.param({**MATCH, "token": 42}, id="token-not-a-string"),
        pytest.param({**MATCH, "url": None}, id="url-null"),
        pytest.param({**MATCH, "source": ["content"]}, id="source-a-list"),
    ],
)
def test_a_report_with_any_malformed_match_is_refused(item: object) -> None:
    with pytest.raises(ValueError, match="each match is an object with string token, type, url and source"):
        parse_report([MATCH, item])


def test_a_leaked_key_that_still_works_is_a_high_risk_exposure_and_is_revoked() -> None:
    key = expiring_in(timedelta(days=30))
    exposure = github_exposure(key, reported(), NOW)
    assert is_id("apkexp", exposure.id)
    assert exposure == dataclasses.replace(
        exposure,
        api_key_id=key.id,
        account_id=key.account_id,
        risk_level=RiskLevel.HIGH,
        action_taken=ActionTaken.REVOKED,
        source=ExposureSource.GITHUB,
        reference=URL,
        description="Found by secret scanning in content.",
        created_at=NOW,
    )
    assert dataclasses.asdict(exposure.wire()) == {
        "id": exposure.id,
        "api_key_id": key.id,
        "risk_level": "high",
        "action_taken": "revoked",
        "source": "github",
        "reference": URL,
        "description": "Found by secret scanning in content.",
        "created_at": rfc3339(NOW),
    }


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(keys.revoke(a_key(), NOW), id="revoked"),
        pytest.param(expiring_in(timedelta(0)), id="expired-before-the-job-ran"),
        pytest.param(expiring_in(-timedelta(days=1), status=KeyStatus.EXPIRED), id="expired"),
    ],
)
def test_a_leaked_key_that_no_longer_works_is_low_risk_and_nothing_is_done(key: ApiKey) -> None:
    exposure = github_exposure(key, reported(), NOW)
    assert (exposure.risk_level, exposure.action_taken) == (RiskLevel.LOW, ActionTaken.NONE)
    assert (exposure.source, exposure.reference, exposure.api_key_id) == (ExposureSource.GITHUB, URL, key.id)


def test_an_exposure_without_a_url_or_source_still_has_a_reference_and_description() -> None:
    exposure = github_exposure(a_key(), reported(url="", source=""), NOW)
    assert exposure.reference == "unknown"  # Paddle's reference is 1 to 250 characters
    assert exposure.description == "Found by secret scanning in a public source."


def test_an_exposures_reference_and_description_are_cut_at_250_characters() -> None:
    long_url = "https://github.com/acme/shop/blob/main/" + "x" * 300
    exposure = github_exposure(a_key(), reported(url=long_url, source="s" * 300), NOW)
    assert exposure.reference == long_url[:250]
    assert exposure.description is not None
    assert len(exposure.description) == 250
    assert exposure.description.startswith("Found by secret scanning in sss")


@pytest.mark.parametrize(("real", "label"), [(True, "true_positive"), (False, "false_positive")])
def test_each_match_is_answered_in_githubs_format(real: bool, label: str) -> None:
    assert report_answer(reported(), real) == {
        "token_raw": MATCH["token"],
        "token_type": "paddle_api_key",
        "label": label,
    }


def test_exposures_module_keeps_paddles_enum_values() -> None:
    assert [r.value for r in RiskLevel] == ["high", "low"]
    assert [a.value for a in ActionTaken] == ["revoked", "none"]
    assert ExposureSource.GITHUB.value == "github"
    assert exposures.REPORT_MAX_TOKENS == 1000
