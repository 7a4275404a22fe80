"""Page sizes of the REST lists. Its own module: DRF imports the default pagination class
while it loads, before the API views (and their OpenAPI decorators) can be imported."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

_POSITIVE_INTEGER = re.compile(r"[1-9][0-9]*")


class QueryParameterInvalid(APIException):
    """A 400 whose errors already name the query parameter (``["query", name]``)."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, name: str, msg: str) -> None:
        super().__init__(msg)
        self.errors = [{"loc": ["query", name], "msg": msg}]


class CasePagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100
    # Only numbers: the document says `page` is an integer, so "last" is refused like "x".
    last_page_strings = ()

    def total(self) -> int:
        """How many items all pages hold (after ``paginate_queryset``)."""
        assert self.page is not None, "paginate_queryset first"
        return self.page.paginator.count

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        # DRF would quietly fall back to 25 for a page size it cannot read and cap one over
        # 100: an integrator who asked for 500 would page through 100s without knowing why.
        for name, most in (
            (self.page_query_param, None),
            (self.page_size_query_param, self.max_page_size),
        ):
            value = request.query_params.get(name)
            if value is None:
                continue
            if not _POSITIVE_INTEGER.fullmatch(value) or (most is not None and int(value) > most):
                limit = f"from 1 to {most}" if most is not None else "of 1 or more"
                raise QueryParameterInvalid(name, f"must be a whole number {limit}")
        return super().paginate_queryset(queryset, request, view)
