"""DRF's default permission is IsAuthenticated: a view that forgets to name its own is
closed to anonymous callers, not open (the role x endpoint matrix covers the views that
exist: tests/audit/test_completeness.py)."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView


class ForgotItsPermissions(APIView):
    def get(self, request: Request) -> Response:
        return Response({"patient": "data"})


def test_a_view_without_permissions_of_its_own_refuses_anonymous_callers(db: None) -> None:
    view = ForgotItsPermissions.as_view()
    response = view(APIRequestFactory().get("/anything/"))
    assert response.status_code in (401, 403)
    assert "patient" not in response.data


def test_the_same_view_answers_a_signed_in_user(alice) -> None:  # type: ignore[no-untyped-def]
    view = ForgotItsPermissions.as_view()
    request = APIRequestFactory().get("/anything/")
    force_authenticate(request, user=alice)
    assert view(request).status_code == 200
