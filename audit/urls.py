from django.urls import path

from audit import api

urlpatterns = [
    path("api/v1/audit/events/", api.EventList.as_view(), name="audit-events"),
    path("api/v1/audit/verify/", api.ChainVerify.as_view(), name="audit-verify"),
]
