"""JSON from clients, with a bound on nesting.

Python's json decoder recurses once per nesting level: a few kilobytes of `[[[[...` raise
RecursionError (a 500 from a view, a crashed socket), and moderately deep documents that do
parse make every later recursive walk (validation, error rendering) risky. No request of ours
nests more than a few levels, so anything deeper than MAX_JSON_DEPTH is refused as bad input.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 32


class JSONTooDeep(ValueError):
    pass


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def json_loads_bounded(data: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads, but nesting deeper than `max_depth` raises JSONTooDeep (a ValueError, like
    any other invalid JSON)."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels") from None
    if _depth_exceeds(value, max_depth):
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels")
    return value


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with the nesting bound (the default parser of every API view)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            return json_loads_bounded(stream.read().decode(encoding))
        except ValueError as exc:  # includes JSONTooDeep and UnicodeDecodeError
            raise ParseError(f"JSON parse error - {type(exc).__name__}") from None
