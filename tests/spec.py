"""Check a response body against Paddle's OpenAPI spec subset (``/work/shared/paddle_openapi``).

The spec is OpenAPI 3.1, so its schemas are JSON Schema 2020-12: the whole document is registered
as one resource and each schema is validated in place, so ``#/components/...`` refs resolve against
it. The operation is picked by path template and method, the schema by the status code or
``default``. A response to a path or method the spec does not have (an unknown route, a 405) can
only be an error, and is checked against ``#/components/schemas/error``.

``format`` is asserted, not just annotated: ``date-time`` must be RFC 3339 with a zone and ``uri``
absolute, because SDKs parse the one and follow the other.
"""

from __future__ import annotations

import functools
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(os.environ.get("KEYHOUSE_PADDLE_SPEC", "/work/shared/paddle_openapi/spec-subset.yaml"))
SPEC_URI = "urn:paddle:spec-subset"
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", re.IGNORECASE)

formats = FormatChecker()


@formats.checks("date-time", raises=ValueError)
def _is_rfc3339(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if _RFC3339.fullmatch(value) is None:
        return False
    datetime.fromisoformat(value)  # raises ValueError on a 31st of February; jsonschema reports it
    return True


@formats.checks("uri")
def _is_absolute_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


#: keyhouse's documented extensions to Paddle's event types (the issue asks for them; Paddle's
#: spec cannot list them). Nothing else is added to the spec.
EXTENSION_EVENT_TYPES = ("notification_setting.disabled",)


@functools.cache
def spec() -> dict[str, Any]:
    with SPEC_PATH.open() as f:
        loaded: dict[str, Any] = yaml.safe_load(f)
    loaded["components"]["schemas"]["event_type_name"]["enum"].extend(EXTENSION_EVENT_TYPES)
    return loaded


@functools.cache
def _registry() -> Registry:
    return Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec(), default_specification=DRAFT202012)
    )


def _pointer(*tokens: str) -> str:
    return "#/" + "/".join(t.replace("~", "~0").replace("/", "~1") for t in tokens)


def _follow(pointer: str) -> tuple[str, dict[str, Any]]:
    """The pointer and contents a (chain of) ``$ref`` leads to; responses may be shared by ref."""
    node = _registry().resolver(SPEC_URI).lookup(pointer).contents
    while "$ref" in node:
        pointer = node["$ref"]
        node = _registry().resolver(SPEC_URI).lookup(pointer).contents
    return pointer, node


def schema_for(path: str, method: str, status: int) -> dict[str, Any]:
    """The JSON Schema of a response, by path template (``/api-keys/{api_key_id}``), method and status.

    It is a ``$ref`` into the spec resource, so the refs inside the target resolve against the spec.
    """
    method = method.lower()
    operation = spec()["paths"].get(path, {}).get(method)
    if operation is None:
        if status < 400:
            raise LookupError(f"the spec has no {method.upper()} {path}")
        target = "#/components/schemas/error"
    else:
        key = str(status) if str(status) in operation["responses"] else "default"
        if key not in operation["responses"]:
            raise LookupError(f"the spec has no {status} (nor default) response for {method.upper()} {path}")
        pointer, response = _follow(_pointer("paths", path, method, "responses", key))
        if "application/json" not in response.get("content", {}):
            raise LookupError(f"{method.upper()} {path} {key} has no JSON body in the spec")
        target = pointer + _pointer("content", "application/json", "schema")[1:]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": SPEC_URI + target}


def validate(path: str, method: str, status: int, body: Any) -> None:
    """Raise ``AssertionError`` listing every problem when ``body`` breaks the spec."""
    _validate(schema_for(path, method, status), body, f"{method.upper()} {path} {status}")


def validate_component(name: str, instance: Any) -> None:
    """Check a value against ``#/components/schemas/<name>`` (for routes the spec does not have)."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"{SPEC_URI}#/components/schemas/{name}",
    }
    _validate(schema, instance, f"components/schemas/{name}")


def _validate(schema: dict[str, Any], body: Any, what: str) -> None:
    validator = Draft202012Validator(schema, registry=_registry(), format_checker=formats)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]
        raise AssertionError(f"{what} breaks the spec:\n  " + "\n  ".join(lines))


def check(response: httpx.Response, path: str, method: str | None = None) -> Any:
    """Validate ``response`` (JSON, per the spec) and return its body."""
    method = method or response.request.method
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    validate(path, method, response.status_code, body)
    return body
