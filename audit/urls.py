from django.urls import path

from audit import api, views

urlpatterns = [
    path("api/v1/audit/events/", api.EventList.as_view(), name="audit-events"),
    path("api/v1/audit/verify/", api.ChainVerify.as_view(), name="audit-verify"),
    path("audit/", views.overview, name="audit-overview"),
    path("audit/cases/", views.case_list, name="audit-cases"),
    path("audit/cases/<uuid:case_id>/", views.case_detail, name="audit-case"),
    path("audit/investigate/", views.investigate, name="audit-investigate"),
    path("audit/events/", views.event_list, name="audit-event-list"),
    path("audit/events/export.csv", views.export_csv, name="audit-export-csv"),
    path("audit/events/export.fhir.json", views.export_fhir, name="audit-export-fhir"),
    path("audit/chain/", views.chain_status, name="audit-chain"),
    path("audit/emergency-access/", views.emergency_access_list, name="audit-emergency-access"),
    path(
        "audit/emergency-access/<int:grant_id>/review/",
        views.emergency_access_reviewed,
        name="audit-emergency-access-review",
    ),
    path("audit/people/", views.people, name="audit-people"),
]
