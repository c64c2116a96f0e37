"""Credential strings (paddle-api.md §2.1, §1): their formats, total parsers, obfuscation and keyed hashes."""

from __future__ import annotations

import hashlib
import hmac
import re
import string
import zlib

import pytest

from keyhouse.domain.accounts import Environment
from keyhouse.domain.credentials import (
    BASE62,
    ParsedApiKey,
    ParsedClientToken,
    Pepper,
    checksum,
    format_api_key,
    hash_secret,
    is_legacy_key,
    new_api_key_secret,
    new_client_token,
    new_legacy_key,
    obfuscate_key,
    parse_api_key,
    parse_bearer,
    parse_client_token,
    random_string,
    secret_matches,
)
from keyhouse.domain.ids import new_id
from tests.spec import spec

#: components.schemas.apikey-secret of SPEC-2025-05 (paddle-api.md §2.1).
API_KEY_PATTERN = re.compile(r"^pdl_(live|sdbx)_apikey_[a-z\d]{26}_[a-zA-Z\d]{22}_[a-zA-Z\d]{3}$", re.ASCII)
CLIENT_TOKEN_PATTERN = re.compile(r"(test|live)_[0-9a-f]{27}")
KEY_ID = "apikey_01jkdpbhazdpn3wpcya45as9tg"
SECRET = "q6TGTJyvoIz7LDtXT65bX7"
# NOTE: frozen format. These literals pin the checksum algorithm: a change here breaks every key issued.
SANDBOX_KEY = "pdl_sdbx_apikey_01jkdpbhazdpn3wpcya45as9tg_q6TGTJyvoIz7LDtXT65bX7_1g1"
LIVE_KEY = "pdl_live_apikey_01jkdpbhazdpn3wpcya45as9tg_q6TGTJyvoIz7LDtXT65bX7_nvA"
PEPPER = Pepper(b"pepper-one-" + b"x" * 32)
OTHER_PEPPER = Pepper(b"pepper-two-" + b"x" * 32)


def redacted_pattern() -> re.Pattern[str]:
    pattern = spec()["components"]["schemas"]["apikey-secret-redacted"]["pattern"]
    return re.compile(pattern, re.ASCII)


def with_checksum(body: str) -> str:
    """``body`` with its correct checksum, so a bad input is refused for the reason it names."""
    return f"{body}_{checksum(body)}"


def spec_checksum(body: str) -> str:
    """The checksum as documented, computed independently: CRC32 mod 62³ as 3 big-endian base62 digits."""
    value = zlib.crc32(body.encode()) % 62**3
    digits = string.digits + string.ascii_uppercase + string.ascii_lowercase
    return digits[value // 62**2] + digits[value // 62 % 62] + digits[value % 62]


# --- API keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", list(Environment))
def test_a_new_key_is_69_characters_in_the_spec_format(environment: Environment) -> None:
    key = new_api_key_secret(environment, new_id("apikey"))
    assert len(key) == 69
    assert API_KEY_PATTERN.fullmatch(key)
    assert key.startswith(f"pdl_{environment.key_marker}_apikey_")


def test_the_environment_marker_is_sdbx_for_sandbox_and_live_for_live() -> None:
    assert format_api_key(Environment.SANDBOX, KEY_ID, SECRET) == SANDBOX_KEY
    assert format_api_key(Environment.LIVE, KEY_ID, SECRET) == LIVE_KEY


@pytest.mark.parametrize("environment", list(Environment))
def test_the_id_inside_a_key_is_the_key_entity_id(environment: Environment) -> None:
    key_id = new_id("apikey")
    key = new_api_key_secret(environment, key_id)
    assert parse_api_key(key) == ParsedApiKey(environment, key_id, key)
    assert key[len("pdl_xxxx_") :].startswith(f"{key_id}_")


def test_each_new_key_has_a_fresh_22_character_alphanumeric_secret() -> None:
    secrets = {new_api_key_secret(Environment.LIVE, KEY_ID).split("_")[4] for _ in range(50)}
    assert len(secrets) == 50
    assert all(len(s) == 22 and s.isascii() and s.isalnum() for s in secrets)


def test_the_checksum_is_crc32_of_everything_before_the_last_underscore_in_3_base62_characters() -> None:
    assert BASE62 == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    for key in (SANDBOX_KEY, LIVE_KEY, new_api_key_secret(Environment.SANDBOX, new_id("apikey"))):
        body, _, check = key.rpartition("_")
        assert check == checksum(body) == spec_checksum(body)


@pytest.mark.parametrize("body", ["", "a", "pdl_", SANDBOX_KEY[:-4], "x" * 1_000, "é∑"])
def test_the_checksum_is_always_3_base62_characters(body: str) -> None:
    value = checksum(body)
    assert len(value) == 3
    assert set(value) <= set(BASE62)
    assert value == spec_checksum(body)


@pytest.mark.parametrize("key", [SANDBOX_KEY, LIVE_KEY])
def test_a_well_formed_key_parses_to_its_environment_and_id(key: str) -> None:
    parsed = parse_api_key(key)
    assert parsed is not None
    assert parsed.key_id == KEY_ID
    assert parsed.full == key
    assert parsed.environment is (Environment.SANDBOX if "_sdbx_" in key else Environment.LIVE)


@pytest.mark.parametrize("key", [SANDBOX_KEY, LIVE_KEY])
def test_every_one_character_change_to_a_key_is_refused_without_a_database_read(key: str) -> None:
    # Exhaustive over these keys. In general a changed body keeps its checksum with odds of 1 in 62³
    # (238,328) per typo: the CRC32 fold makes a look-alike unlikely, not impossible.
    changed = [
        key[:i] + char + key[i + 1 :]
        for i in range(len(key))
        for char in string.ascii_letters + string.digits + "_"
        if char != key[i]
    ]
    assert len(changed) == 69 * 62
    assert [c for c in changed if parse_api_key(c) is not None] == []


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("pdl_", id="prefix only"),
        pytest.param(LIVE_KEY[:-1], id="checksum of 2"),
        pytest.param(LIVE_KEY + "A", id="checksum of 4"),
        pytest.param(LIVE_KEY[:-4], id="no checksum"),
        pytest.param(LIVE_KEY[:-3] + LIVE_KEY[-3:].swapcase(), id="checksum in the wrong case"),
        pytest.param(SANDBOX_KEY[:-3] + LIVE_KEY[-3:], id="the other environment's checksum"),
        pytest.param("pdl_sdbx_" + LIVE_KEY[9:], id="environment swapped, checksum kept"),
        pytest.param(with_checksum(f"pdl_test_{KEY_ID}_{SECRET}"), id="pdl_test marker"),
        pytest.param(with_checksum(f"pdl_prod_{KEY_ID}_{SECRET}"), id="pdl_prod marker"),
        pytest.param(with_checksum(f"pdl_LIVE_{KEY_ID}_{SECRET}"), id="uppercase marker"),
        pytest.param(with_checksum(f"PDL_live_{KEY_ID}_{SECRET}"), id="uppercase pdl"),
        pytest.param(with_checksum(f"pdl_live_{KEY_ID[7:]}_{SECRET}"), id="no apikey_ literal"),
        pytest.param(with_checksum(f"pdl_live_ctkn_{KEY_ID[7:]}_{SECRET}"), id="another entity"),
        pytest.param(with_checksum(f"pdl_live_{KEY_ID.upper()}_{SECRET}"), id="uppercase id"),
        pytest.param(with_checksum(f"pdl_live_{KEY_ID[:-1]}_{SECRET}"), id="id of 25"),
        pytest.param(with_checksum(f"pdl_live_{KEY_ID}0_{SECRET}"), id="id of 27"),
        pytest.param(with_checksum(f"pdl_live_{KEY_ID}_{SECRET[:-1]}"), id="secret of 21"),
        pytest.param(with_checksum(f"pdl_live_{KEY_ID}_{SECRET}A"), id="secret of 23"),
        pytest.param(with_checksum(f"pdl_live_{KEY_ID}_{SECRET[:-1]}-"), id="hyphen in secret"),
        pytest.param(with_checksum(f"pdl_live_{KEY_ID}_{SECRET[:-1]}_"), id="underscore in secret"),
        pytest.param(with_checksum(f"pdl_live_{KEY_ID}_{SECRET[:-1]}é"), id="accented letter in secret"),
        pytest.param(with_checksum(f"pdl_live_{KEY_ID}_{SECRET}_{SECRET}"), id="two secrets"),
        pytest.param(f"pdl_live_{KEY_ID}_{SECRET}_{SECRET[:2]}-", id="hyphen in checksum"),
        pytest.param(" " + LIVE_KEY, id="leading space"),
        pytest.param(LIVE_KEY + " ", id="trailing space"),
        pytest.param(LIVE_KEY + "\n", id="trailing newline"),
        pytest.param(f"Bearer {LIVE_KEY}", id="whole authorization header"),
        pytest.param(LIVE_KEY + LIVE_KEY, id="key twice"),
        pytest.param("a" * 50, id="legacy key"),
        pytest.param("test_" + "a" * 27, id="client token"),
        pytest.param(KEY_ID, id="bare id"),
    ],
)
def test_parse_api_key_refuses_anything_that_is_not_a_well_formed_key(value: str) -> None:
    assert parse_api_key(value) is None


def test_parse_api_key_refuses_non_ascii_digits_even_with_a_matching_checksum() -> None:
    arabic_indic_zeros = "\u0660" * 26
    assert parse_api_key(with_checksum(f"pdl_live_apikey_{arabic_indic_zeros}_{SECRET}")) is None


# --- obfuscation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "shown"),
    [
        (Environment.LIVE, "pdl_live_apikey_01jkdpbhaz****"),
        (Environment.SANDBOX, "pdl_sdbx_apikey_01jkdpbhaz****"),
    ],
)
def test_an_obfuscated_key_is_the_key_up_to_the_first_10_characters_of_its_id(
    environment: Environment, shown: str
) -> None:
    assert obfuscate_key(environment, KEY_ID) == shown
    assert format_api_key(environment, KEY_ID, SECRET).startswith(shown.removesuffix("****"))
    assert redacted_pattern().fullmatch(shown)


def test_an_obfuscated_legacy_key_shows_only_its_id_and_no_pdl_prefix() -> None:
    shown = obfuscate_key(None, KEY_ID)
    assert shown == "apikey_01jkdpbhaz****"
    assert redacted_pattern().fullmatch(shown)


@pytest.mark.parametrize("environment", [Environment.SANDBOX, Environment.LIVE, None])
def test_no_obfuscated_key_shows_a_character_of_the_secret(environment: Environment | None) -> None:
    key_id = new_id("apikey")
    shown = obfuscate_key(environment, key_id)
    assert redacted_pattern().fullmatch(shown)
    assert shown.removesuffix("****").endswith(key_id[: len("apikey_") + 10])
    assert "apikey_" in shown


# --- legacy keys ----------------------------------------------------------------------------------


def test_a_new_legacy_key_is_50_random_letters_and_digits() -> None:
    keys = {new_legacy_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(is_legacy_key(k) and len(k) == 50 and k.isascii() and k.isalnum() for k in keys)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("a" * 49, id="49 characters"),
        pytest.param("a" * 51, id="51 characters"),
        pytest.param("a" * 49 + "-", id="hyphen"),
        pytest.param("a" * 49 + "_", id="underscore"),
        pytest.param("a" * 49 + " ", id="trailing space"),
        pytest.param("a" * 50 + "\n", id="trailing newline"),
        pytest.param("a" * 49 + "é", id="accented letter"),
        pytest.param(LIVE_KEY, id="a new-format key"),
    ],
)
def test_is_legacy_key_refuses_anything_but_50_letters_and_digits(value: str) -> None:
    assert not is_legacy_key(value)


# --- client-side tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "prefix"), [(Environment.SANDBOX, "test_"), (Environment.LIVE, "live_")]
)
def test_a_client_token_is_its_environment_prefix_and_27_lowercase_hex(
    environment: Environment, prefix: str
) -> None:
    tokens = {new_client_token(environment) for _ in range(20)}
    assert len(tokens) == 20
    for token in tokens:
        assert token.startswith(prefix)
        assert CLIENT_TOKEN_PATTERN.fullmatch(token)
        assert parse_client_token(token) == ParsedClientToken(environment, token)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("test_", id="prefix only"),
        pytest.param("test_" + "a" * 26, id="26 hex"),
        pytest.param("test_" + "a" * 28, id="28 hex"),
        pytest.param("test_" + "A" * 27, id="uppercase hex"),
        pytest.param("test_" + "g" * 27, id="not hex"),
        pytest.param("Test_" + "a" * 27, id="capitalised prefix"),
        pytest.param("sdbx_" + "a" * 27, id="api key marker"),
        pytest.param("prod_" + "a" * 27, id="prod prefix"),
        pytest.param("test-" + "a" * 27, id="hyphen for underscore"),
        pytest.param("test_" + "a" * 27 + "\n", id="trailing newline"),
        pytest.param(" live_" + "a" * 27, id="leading space"),
        pytest.param(LIVE_KEY, id="an api key"),
    ],
)
def test_parse_client_token_refuses_anything_else(value: str) -> None:
    assert parse_client_token(value) is None


def test_parse_client_token_refuses_non_ascii_digits() -> None:
    assert parse_client_token("test_" + "\u0663" * 27) is None


# --- hashing --------------------------------------------------------------------------------------


def test_a_secret_is_hashed_with_hmac_sha256_under_the_pepper() -> None:
    digest = hash_secret(PEPPER, LIVE_KEY)
    assert digest == hmac.new(PEPPER.key, LIVE_KEY.encode(), hashlib.sha256).digest()
    assert len(digest) == 32
    assert hash_secret(PEPPER, LIVE_KEY) == digest  # deterministic, so a legacy key is found by its hash


def test_the_same_secret_matches_its_hash() -> None:
    assert secret_matches(PEPPER, LIVE_KEY, hash_secret(PEPPER, LIVE_KEY))


def test_a_different_secret_does_not_match() -> None:
    stored = hash_secret(PEPPER, LIVE_KEY)
    assert not secret_matches(PEPPER, SANDBOX_KEY, stored)
    assert not secret_matches(PEPPER, LIVE_KEY[:-1] + "B", stored)
    assert not secret_matches(PEPPER, "", stored)


def test_a_hash_made_under_another_pepper_does_not_match() -> None:
    assert hash_secret(PEPPER, LIVE_KEY) != hash_secret(OTHER_PEPPER, LIVE_KEY)
    assert not secret_matches(OTHER_PEPPER, LIVE_KEY, hash_secret(PEPPER, LIVE_KEY))


def test_a_pepper_id_is_a_stable_fingerprint_that_does_not_reveal_the_pepper() -> None:
    assert PEPPER.id == Pepper(PEPPER.key).id
    assert re.fullmatch(r"[0-9a-f]{12}", PEPPER.id)
    assert PEPPER.id != OTHER_PEPPER.id
    assert PEPPER.id.encode() not in PEPPER.key
    assert PEPPER.id not in PEPPER.key.hex()
    assert PEPPER.id != hashlib.sha256(PEPPER.key).hexdigest()[:12]


# --- the Authorization header ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "credential"),
    [
        (f"Bearer {LIVE_KEY}", LIVE_KEY),
        (f"bearer {LIVE_KEY}", LIVE_KEY),  # the Node SDK sends lowercase
        (f"BEARER {LIVE_KEY}", LIVE_KEY),
        (f"Bearer  {LIVE_KEY} ", LIVE_KEY),
        ("Bearer not-a-key", "not-a-key"),  # well-formed header; the key check comes later
    ],
)
def test_parse_bearer_returns_the_credential_of_a_bearer_header(header: str, credential: str) -> None:
    assert parse_bearer(header) == credential


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("", id="empty"),
        pytest.param("Bearer", id="scheme only"),
        pytest.param("Bearer ", id="scheme and space"),
        pytest.param("Bearer    ", id="scheme and spaces"),
        pytest.param(LIVE_KEY, id="no scheme"),
        pytest.param(f"Basic {LIVE_KEY}", id="basic scheme"),
        pytest.param(f"Token {LIVE_KEY}", id="token scheme"),
        pytest.param(f"Bearer{LIVE_KEY}", id="no space after scheme"),
        pytest.param(f"Bearer\t{LIVE_KEY}", id="tab after scheme"),
        pytest.param(f" Bearer {LIVE_KEY}", id="leading space"),
        pytest.param(f"Bearer {LIVE_KEY} {LIVE_KEY}", id="two credentials"),
        pytest.param(f"Bearer: {LIVE_KEY}", id="colon after scheme"),
    ],
)
def test_parse_bearer_refuses_a_header_that_is_not_bearer_and_one_credential(header: str) -> None:
    assert parse_bearer(header) is None


def test_random_string_draws_the_given_length_from_the_given_alphabet() -> None:
    assert len(random_string(40)) == 40
    assert set(random_string(200, "ab")) <= {"a", "b"}
    assert random_string(0) == ""


def test_is_legacy_key_refuses_non_ascii_digits() -> None:
    assert not is_legacy_key("a" * 49 + "\u0663")
