from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

_KEY_ORDERINGS = {"pk", "-pk", "id", "-id"}
_BIGINT_MAX = 2**63 - 1


class DefaultCursorPagination(CursorPagination):
    """Cursor pagination: stable under inserts, which a live chat has plenty of."""

    ordering = "-pk"
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request):
        """DRF's, plus a check of the position: a cursor is client input, and a forged one
        (`p=abc`, or a number past bigint) reached the database filter and answered 500."""
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        ordering = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
        if ordering in _KEY_ORDERINGS:
            try:
                position = int(cursor.position)
            except (TypeError, ValueError):
                raise NotFound(self.invalid_cursor_message) from None
            if not -_BIGINT_MAX <= position <= _BIGINT_MAX:
                raise NotFound(self.invalid_cursor_message)
        return cursor
