from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from clinical import api, ops, views

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
    path("", include("audit.urls")),
]
