"""Time on the wire: RFC 3339 in UTC with microseconds and ``Z``; parsing is total."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from keyhouse.domain.times import parse_rfc3339, rfc3339, rfc3339_or_none, utc_now

MOMENT = datetime(2025, 3, 26, 6, 58, 38, 517522, tzinfo=UTC)


def test_a_time_is_written_in_utc_with_microseconds_and_z() -> None:
    assert rfc3339(MOMENT) == "2025-03-26T06:58:38.517522Z"
    assert rfc3339(MOMENT.replace(microsecond=0)) == "2025-03-26T06:58:38.000000Z"


def test_a_time_in_another_zone_is_written_as_the_same_instant_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert rfc3339(datetime(2025, 3, 26, 7, 58, 38, 517522, tzinfo=paris)) == "2025-03-26T06:58:38.517522Z"


def test_a_missing_time_is_written_as_null() -> None:
    assert rfc3339_or_none(None) is None
    assert rfc3339_or_none(MOMENT) == "2025-03-26T06:58:38.517522Z"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("2025-03-26T06:58:38.517522Z", MOMENT),
        ("2025-03-26T07:58:38.517522+01:00", MOMENT),
        ("2025-03-26T06:58:38Z", MOMENT.replace(microsecond=0)),
        ("2025-03-26T06:58:38.517Z", MOMENT.replace(microsecond=517000)),
        ("2025-03-26T06:58:38.517522+00:00", MOMENT),
        ("2025-03-26", datetime(2025, 3, 26, tzinfo=UTC)),  # a bare date is midnight UTC
        (" 2025-03-26T06:58:38.517522Z ", MOMENT),
    ],
)
def test_parse_rfc3339_reads_a_zoned_time_or_a_bare_date_as_utc(value: str, parsed: datetime) -> None:
    result = parse_rfc3339(value)
    assert result == parsed
    assert result is not None
    assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("2025-03-26T06:58:38", id="no zone"),
        pytest.param("2025-03-26T06:58:38.517522", id="no zone with fraction"),
        pytest.param("2025-02-30T00:00:00Z", id="30 February"),
        pytest.param("2025-02-30", id="30 February as a date"),
        pytest.param("2025-13-01T00:00:00Z", id="month 13"),
        pytest.param("2025-03-26T24:00:01Z", id="hour 24"),
        pytest.param("2025-03-26T06:58:38+25:00", id="offset beyond a day"),
        pytest.param("26/03/2025", id="another date format"),
        pytest.param("yesterday", id="a word"),
        pytest.param("1742972318", id="unix seconds"),
        pytest.param("2025-03-26T06:58:38ZZ", id="two zones"),
        pytest.param("2025-03-26T06:58:38Z extra", id="trailing text"),
    ],
)
def test_parse_rfc3339_refuses_anything_else(value: str) -> None:
    assert parse_rfc3339(value) is None


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_parse_rfc3339_refuses_a_time_that_falls_outside_the_representable_range(value: str) -> None:
    assert parse_rfc3339(value) is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2025-W13-3", id="week date"),
        pytest.param("20250326T065838Z", id="basic format"),
        pytest.param("2025-03-26x06:58:38Z", id="any separator"),
        pytest.param("2025-03-26T06Z", id="hour only"),
        pytest.param("2025-03-26T06:58:38+0100", id="offset without colon"),
    ],
)
def test_parse_rfc3339_refuses_iso_8601_forms_that_are_not_rfc_3339(value: str) -> None:
    assert parse_rfc3339(value) is None


def test_now_is_an_aware_utc_time() -> None:
    before = datetime.now(UTC)
    now = utc_now()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)
