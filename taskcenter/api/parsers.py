"""JSON only, never more than MAX_REQUEST_BODY_BYTES read from the client, never nested deeper
than MAX_JSON_DEPTH."""

from __future__ import annotations

import codecs
import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from taskcenter.api.exceptions import PayloadTooLarge

#: Arrays and objects inside each other; no body of this API needs more than a few. Deeper ones
#: would hit the interpreter's recursion limit somewhere (decoding, storing, reading back).
MAX_JSON_DEPTH = 64
_TOO_DEEP = f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels."


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"Request body too large: at most {limit} bytes.")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"Request body too large: at most {limit} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.decode(raw, encoding)
            data = json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            raise ParseError(_TOO_DEEP) from None
        except (ValueError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _deeper_than(data, MAX_JSON_DEPTH):
            raise ParseError(_TOO_DEEP)
        return data


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _deeper_than(value, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (walked without recursion)."""
    pending = [(value, 1)] if isinstance(value, (dict, list)) else []
    while pending:
        container, depth = pending.pop()
        if depth > limit:
            return True
        children = container.values() if isinstance(container, dict) else container
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
