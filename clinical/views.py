"""Pages for people (the clinician screens grow here)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from bedside import roles


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "clinical/home.html", {"role": roles.primary_role(request.user)})
