from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from clinical import api, ops, views
from reasoning import views as model_views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/v1/cases/", api.CaseListCreate.as_view(), name="case-list"),
    path("api/v1/cases/<uuid:case_id>/", api.CaseDetail.as_view(), name="case-detail"),
    path("api/v1/cases/<uuid:case_id>/reviews/", api.CaseReviews.as_view(), name="case-reviews"),
    path("api/v1/cases/<uuid:case_id>/rerun/", api.CaseRerun.as_view(), name="case-rerun"),
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
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
