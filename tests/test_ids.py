"""Entity ids: ``<prefix>_`` + 26 lowercase Crockford base32 characters, sorting in creation order."""

from __future__ import annotations

import time

import pytest

from keyhouse.domain import ids
from keyhouse.domain.ids import ALPHABET, is_id, new_id, new_ulid

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
T = 1_700_000_000_000  # 2023-11-14, a fixed millisecond
VALID = "apikey_01jkdpbhazdpn3wpcya45as9tg"


def encode(value: int, length: int) -> str:
    """Big-endian base32 in the Crockford alphabet, written independently of the module."""
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(length)))


def decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + CROCKFORD.index(char)
    return value


@pytest.fixture
def fresh_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the last id made, so an injected ``now_ms`` is used as given (restored afterwards)."""
    monkeypatch.setattr(ids, "_last", (0, 0))


def test_the_alphabet_is_lowercase_crockford_base32_without_i_l_o_u() -> None:
    assert ALPHABET == CROCKFORD
    assert len(set(ALPHABET)) == 32
    assert not set("ilou") & set(ALPHABET)


@pytest.mark.parametrize("prefix", ["apikey", "acc", "ctkn", "evt", "ntfset"])
def test_a_new_id_is_its_prefix_an_underscore_and_26_crockford_characters(prefix: str) -> None:
    value = new_id(prefix)
    assert value.startswith(f"{prefix}_")
    body = value.removeprefix(f"{prefix}_")
    assert len(body) == 26
    assert set(body) <= set(CROCKFORD)
    assert is_id(prefix, value)


def test_ids_made_in_a_tight_loop_sort_in_creation_order_and_never_repeat() -> None:
    made = [new_id("apikey") for _ in range(10_000)]
    assert sorted(made) == made
    assert len(set(made)) == len(made)


def test_ids_made_within_one_millisecond_sort_in_creation_order(fresh_sequence: None) -> None:
    made = [new_ulid(now_ms=T) for _ in range(1_000)]
    assert sorted(made) == made
    assert len(set(made)) == len(made)
    assert {value[:10] for value in made} == {encode(T, 10)}


def test_within_one_millisecond_the_random_part_counts_up_by_one(fresh_sequence: None) -> None:
    first, second = new_ulid(now_ms=T), new_ulid(now_ms=T)
    assert decode(second[10:]) == decode(first[10:]) + 1


def test_a_clock_that_steps_backwards_does_not_break_the_order(fresh_sequence: None) -> None:
    made = [new_ulid(now_ms=ms) for ms in (T + 5, T + 1, T + 3, T, T + 5)]
    assert sorted(made) == made
    assert {value[:10] for value in made} == {encode(T + 5, 10)}


def test_a_later_millisecond_starts_the_time_part_afresh(fresh_sequence: None) -> None:
    first, second = new_ulid(now_ms=T), new_ulid(now_ms=T + 1)
    assert (first[:10], second[:10]) == (encode(T, 10), encode(T + 1, 10))
    assert first < second


def test_the_first_ten_characters_are_the_creation_millisecond(fresh_sequence: None) -> None:
    # The ULID specification's own example: 1469918176385 ms is 01ARYZ6S41.
    assert new_ulid(now_ms=1_469_918_176_385)[:10] == "01aryz6s41"


def test_without_an_injected_time_the_wall_clock_is_used(fresh_sequence: None) -> None:
    before = time.time_ns() // 1_000_000
    made = decode(new_ulid()[:10])
    after = time.time_ns() // 1_000_000
    assert before <= made <= after


def test_when_a_millisecond_runs_out_of_random_values_the_next_id_still_sorts_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids, "_last", (T, 2**80 - 1))
    previous = encode(T, 10) + encode(2**80 - 1, 16)
    assert new_ulid(now_ms=T) > previous


def test_is_id_accepts_the_prefix_an_underscore_and_26_lowercase_alphanumerics() -> None:
    assert is_id("apikey", VALID)
    assert is_id("ctkn", "ctkn_01ghbkd0frb9k95cnhwd1bxpvk")
    # Paddle's pattern is [a-z\d]{26}, wider than the Crockford alphabet new_id draws from.
    assert is_id("apikey", "apikey_" + "ilou" * 6 + "00")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("apikey_", id="prefix only"),
        pytest.param("apikey", id="prefix without underscore"),
        pytest.param(VALID[:-1], id="25 characters"),
        pytest.param(VALID + "0", id="27 characters"),
        pytest.param("apikey_01JKDPBHAZDPN3WPCYA45AS9TG", id="uppercase body"),
        pytest.param("APIKEY_01jkdpbhazdpn3wpcya45as9tg", id="uppercase prefix"),
        pytest.param("ctkn_01jkdpbhazdpn3wpcya45as9tg", id="another entity's prefix"),
        pytest.param("apikey-01jkdpbhazdpn3wpcya45as9tg", id="hyphen for underscore"),
        pytest.param("apikey__01jkdpbhazdpn3wpcya45as9t", id="double underscore"),
        pytest.param("apikey_01jkdpbhazdpn3wpcya45as9t_", id="underscore in body"),
        pytest.param("apikey_01jkdpbhazdpn3wpcya45as9t-", id="punctuation in body"),
        pytest.param(" " + VALID, id="leading space"),
        pytest.param(VALID + " ", id="trailing space"),
        pytest.param(VALID + "\n", id="trailing newline"),
        pytest.param("pdl_live_" + VALID, id="key prefix in front"),
        pytest.param(VALID + "_q6TGTJyvoIz7LDtXT65bX7", id="a key's id with its secret"),
    ],
)
def test_is_id_refuses_anything_else(value: str) -> None:
    assert not is_id("apikey", value)


def test_is_id_wants_the_whole_prefix() -> None:
    assert not is_id("api", VALID)
    assert not is_id("apikeys", VALID)


def test_is_id_refuses_non_ascii_digits() -> None:
    assert not is_id("apikey", "apikey_" + "\u0661" * 26)  # ARABIC-INDIC DIGIT ONE
