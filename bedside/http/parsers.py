"""A JSON parser that turns every malformed body into a 400, never a 500."""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class BodyTooLarge(ParseError):
    status_code = 413
    default_detail = "request body is too large"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class StrictJSONParser(JSONParser):
    media_type = "application/json"
    limit_setting = "BEDSIDE_MAX_BODY_BYTES"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            raw = stream.read() if stream is not None else b""
        except RequestDataTooBig as exc:
            limit = getattr(settings, self.limit_setting)
            raise BodyTooLarge(f"request body is larger than {limit} bytes") from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"body is not valid UTF-8 (byte {exc.start})") from exc
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError as exc:
            raise ParseError("JSON is nested too deeply") from exc
        except ValueError as exc:
            raise ParseError(f"body is not valid JSON: {exc}") from exc
        if _SUSPECT_ESCAPE.search(text):
            _refuse_unstorable_text(data, [])
        return data


# JSON may escape a NUL or half a surrogate pair into a string; PostgreSQL cannot store
# either in text or jsonb, so they are refused here (400) rather than failing at the
# database (500). Only bodies that contain such an escape are walked.
_SUSPECT_ESCAPE = re.compile(r"\\u(0000|d[89a-f])", re.IGNORECASE)


def _refuse_unstorable_text(value: Any, path: list[Any]) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ParseError(f"text may not contain NUL characters (at {path})")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ParseError(f"text has an unpaired surrogate escape (at {path})") from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_unstorable_text(key, path)
            _refuse_unstorable_text(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_unstorable_text(item, [*path, index])


class FhirJSONParser(StrictJSONParser):
    """FHIR's JSON media type: the same strict JSON, with its own (larger) size limit."""

    media_type = "application/fhir+json"
    limit_setting = "BEDSIDE_MAX_FHIR_BODY_BYTES"
