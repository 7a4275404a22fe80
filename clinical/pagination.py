"""Page sizes of the REST lists. Its own module: DRF imports the default pagination class
while it loads, before the API views (and their OpenAPI decorators) can be imported."""

from rest_framework.pagination import PageNumberPagination


class CasePagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100
