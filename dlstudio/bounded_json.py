"""JSON from outside, bounded in depth (docs/RELIABILITY.md, "Resource limits").

Python's parser recurses once per level: 5,000 nested arrays in a request body end in a RecursionError,
a 500 before any sign-in. Every JSON a request carries goes through `loads` or the API's parser here,
which turn that, and anything nested deeper than any dlstudio value needs, into a 400 with a sentence.
"""
import json
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# A config is a few levels deep (augment.crop_pad, a sweep's parameter ranges); 32 is far beyond any.
MAX_DEPTH = 32
TOO_DEEP = f"JSON nested deeper than {MAX_DEPTH} levels is refused."


class TooDeep(ValueError):
    pass


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep when lists and objects nest deeper than `limit`; without recursion, in one pass."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > limit:
                raise TooDeep(TOO_DEEP)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))


def loads(text: str | bytes) -> Any:
    """json.loads, with TooDeep (a ValueError) for nesting past MAX_DEPTH."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep(TOO_DEEP) from None
    check_depth(value)
    return value


class BoundedJSONParser(JSONParser):
    """The REST framework's JSON parser, with the depth bound."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        try:
            check_depth(data)
        except TooDeep as exc:
            raise ParseError(str(exc)) from None
        return data
