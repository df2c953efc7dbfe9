"""Pages of lists. `Pagination` numbers pages (and counts them); `KeysetPagination` follows an opaque
cursor (the sort value and id of the row a page ended on), so a page costs the same at the end of a
million rows as at the start, counts nothing, and rows added between two pages neither repeat nor vanish.

DRF's CursorPagination was not enough: it keys on the first ordering field alone and steps over ties
with an offset, so equal values (many runs at the same accuracy) shift when rows are added; here every
order ends with the unique, non-null id, and a sort value that may be null is excluded by the selector.
"""
import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class Pagination(PageNumberPagination):
    """Lists answer {"results": [...], "next": url or null, "count": n}."""

    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link(), "count": self.page.paginator.count})


# The query parameters of a list paged by KeysetPagination, for its schema.
KEYSET_PARAMETERS = [OpenApiParameter("cursor", str, description="From a `next` or `previous` link."),
                     OpenApiParameter("page_size", int, description=f"1..{MAX_PAGE_SIZE}, {PAGE_SIZE} unless given."),
                     OpenApiParameter("page", int, description="Numbered (and counted) pages, for older clients.")]


class BadCursor(ValueError):
    pass


@dataclass
class KeysetPage:
    rows: list
    next: str | None  # cursors
    previous: str | None


def _order_of(queryset) -> tuple[str, bool]:
    """(sort field, descending) of a queryset ordered by (±field, ±id), both the same way."""
    order = list(queryset.query.order_by)
    same_way = len(order) == 2 and order[0].startswith("-") == order[1].startswith("-")
    if not same_way or order[1].lstrip("-") not in ("id", "pk"):
        raise ValueError(f"keyset pages need an order (±field, ±id) in one direction, not {order}")
    return order[0].lstrip("-"), order[0].startswith("-")


def _encode(value, pk: int, back: bool) -> str:
    if isinstance(value, dt.datetime):
        value = {"t": value.isoformat()}
    elif isinstance(value, dt.timedelta):
        value = {"s": value.total_seconds()}
    raw = json.dumps({"v": value, "i": pk, "b": back}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str):
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, pk, back = data["v"], int(data["i"]), bool(data["b"])
        if isinstance(value, dict) and "t" in value:
            value = dt.datetime.fromisoformat(value["t"])
        elif isinstance(value, dict) and "s" in value:
            value = dt.timedelta(seconds=float(value["s"]))
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            raise BadCursor
    except (BadCursor, ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadCursor("The cursor is not valid; follow the next link as given.") from None
    return value, pk, back


def keyset_page(queryset, cursor: str | None, size: int) -> KeysetPage:
    """One page of `queryset` (ordered by (±field, ±id)) after `cursor` (None: the first page).
    Reads size + 1 rows through the order's index; no count, no offset. BadCursor for a forged cursor."""
    field, descending = _order_of(queryset)
    back = False
    if cursor:
        value, pk, back = _decode(cursor)
        # Forward on a descending order means smaller; going back flips it. The `lte`/`gte` bound lets
        # the database seek in the index; the OR then drops the rows of equal value already shown.
        smaller = descending != back
        if smaller:
            queryset = queryset.filter(Q(**{f"{field}__lte": value}) & (Q(**{f"{field}__lt": value}) | Q(pk__lt=pk)))
        else:
            queryset = queryset.filter(Q(**{f"{field}__gte": value}) & (Q(**{f"{field}__gt": value}) | Q(pk__gt=pk)))
        if back:
            queryset = queryset.reverse()
    rows = list(queryset[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if back:
        rows.reverse()
    if not rows:
        return KeysetPage(rows, None, None)
    first, last = rows[0], rows[-1]
    has_next = more if not back else True
    has_previous = (more if back else bool(cursor))
    return KeysetPage(rows, _encode(getattr(last, field), last.pk, False) if has_next else None,
                      _encode(getattr(first, field), first.pk, True) if has_previous else None)


def page_size_of(params, default: int = PAGE_SIZE) -> int:
    """`?page_size=`, within 1..MAX_PAGE_SIZE (a number outside is brought within; anything else is the default)."""
    try:
        return min(max(int(params.get("page_size", default)), 1), MAX_PAGE_SIZE)
    except (TypeError, ValueError):
        return default


def page_for_request(queryset, params, default_size: int = PAGE_SIZE) -> KeysetPage:
    """A list page's rows by `?cursor=` and `?page_size=`; a forged or stale cursor shows the first page
    (a page has no error slot for it; the API answers 400 instead)."""
    size = page_size_of(params, default_size)
    try:
        return keyset_page(queryset, params.get("cursor"), size)
    except BadCursor:
        return keyset_page(queryset, None, size)


class KeysetPagination(BasePagination):
    """{"results": [...], "next": url or null, "previous": url or null} by cursor (`?cursor=`); a request
    with `?page=` is answered as before, numbered and counted, for clients written against that."""

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        if "page" in request.query_params and "cursor" not in request.query_params:
            self.numbered = Pagination()
            return self.numbered.paginate_queryset(queryset, request, view)
        self.numbered = None
        try:
            self.page = keyset_page(queryset, request.query_params.get("cursor"), page_size_of(request.query_params))
        except BadCursor as exc:
            raise ValidationError({"cursor": [str(exc)]}) from None
        return self.page.rows

    def _link(self, cursor):
        if cursor is None:
            return None
        url = remove_query_param(self.request.build_absolute_uri(), "page")
        return replace_query_param(url, "cursor", cursor)

    def get_paginated_response(self, data):
        if self.numbered is not None:
            return self.numbered.get_paginated_response(data)
        return Response({"results": data, "next": self._link(self.page.next),
                         "previous": self._link(self.page.previous)})

    def get_paginated_response_schema(self, schema):
        return {"type": "object", "required": ["results"], "properties": {
            "results": schema, "next": {"type": "string", "nullable": True, "format": "uri"},
            "previous": {"type": "string", "nullable": True, "format": "uri"}}}
