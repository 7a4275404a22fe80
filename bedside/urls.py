from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from bedside.accounts.sso_views import SignInPage, SignOutView, SsoCallbackView, SsoStartView
from bedside.http import errors
from bedside.middleware import docs_policy
from bedside.ops import health as ops
from clinical import api, views
from clinical.ehr.cds_hooks import views as cds_hooks_views
from reasoning import views as model_views

handler404 = errors.not_found

urlpatterns = [
    path("", views.home, name="home"),
    path("api/v1/cases/", api.CaseListCreate.as_view(), name="case-list"),
    path("api/v1/cases/<uuid:case_id>/", api.CaseDetail.as_view(), name="case-detail"),
    path("api/v1/cases/<uuid:case_id>/reviews/", api.CaseReviews.as_view(), name="case-reviews"),
    path("api/v1/cases/<uuid:case_id>/rerun/", api.CaseRerun.as_view(), name="case-rerun"),
    path(
        "api/v1/cases/<uuid:case_id>/emergency-access/",
        api.CaseEmergencyAccess.as_view(),
        name="case-emergency-access",
    ),
    path(
        "api/v1/model/validation/", model_views.ModelValidation.as_view(), name="model-validation"
    ),
    path("model/", model_views.model_page, name="model"),
    path(
        "model/reports/<int:report_id>/reliability.png",
        model_views.reliability_png,
        name="model-reliability",
    ),
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("accounts/login/", SignInPage.as_view(), name="login"),
    path("accounts/logout/", SignOutView.as_view(), name="logout"),
    # Single sign-on (issue 19): the provider's redirect URI is <public URL>/oidc/callback/.
    path("oidc/start/", SsoStartView.as_view(), name="oidc-start"),
    path("oidc/callback/", SsoCallbackView.as_view(), name="oidc-callback"),
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The API's reading pages: their scripts come from our static files (the split view
    # serves Swagger UI's start-up script as a file, not inline); their libraries insert
    # style elements, which the policy for these two pages allows.
    path(
        "api/v1/docs/",
        docs_policy(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path(
        "api/v1/redoc/",
        docs_policy(SpectacularRedocView.as_view(url_name="api-schema")),
        name="api-redoc",
    ),
    path("cds-services", cds_hooks_views.Discovery.as_view(), name="cds-discovery"),
    path("cds-services/<str:service_id>", cds_hooks_views.HookCall.as_view(), name="cds-hook"),
    path(
        "cds-services/<str:service_id>/feedback",
        cds_hooks_views.HookFeedback.as_view(),
        name="cds-feedback",
    ),
]

# The clinician's screens (clinical/screens/).
from clinical.screens import views as screens  # noqa: E402

urlpatterns += [
    path("cases/", screens.case_list, name="case-list-page"),
    path("cases/new/", screens.case_new, name="case-new"),
    path("cases/<uuid:case_id>/", screens.case_page, name="case-page"),
    path("cases/<uuid:case_id>/status.json", screens.case_status, name="case-status"),
    path("cases/<uuid:case_id>/reviews/", screens.case_review, name="case-review"),
    path("cases/<uuid:case_id>/rerun/", screens.case_rerun, name="case-rerun-page"),
    path(
        "cases/<uuid:case_id>/emergency-access/",
        screens.case_emergency_access,
        name="case-emergency-access-page",
    ),
    path("", include("audit.urls")),
]
