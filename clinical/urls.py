from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from clinical import api, cds_hooks_views, ops, views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/v1/cases/", api.CaseListCreate.as_view(), name="case-list"),
    path("api/v1/cases/<uuid:case_id>/", api.CaseDetail.as_view(), name="case-detail"),
    path("api/v1/cases/<uuid:case_id>/reviews/", api.CaseReviews.as_view(), name="case-reviews"),
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("cds-services", cds_hooks_views.Discovery.as_view(), name="cds-discovery"),
    path("cds-services/<str:service_id>", cds_hooks_views.HookCall.as_view(), name="cds-hook"),
    path(
        "cds-services/<str:service_id>/feedback",
        cds_hooks_views.HookFeedback.as_view(),
        name="cds-feedback",
    ),
]
