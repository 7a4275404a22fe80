"""The clinician's pages. Thin: forms live in ``case_form``/``review_form``, reads in
``presenting``, writes in ``clinical.services``."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from pydantic import ValidationError

from audit.actors import actor_for
from bedside import roles
from bedside.middleware import background_poll
from clinical import services
from clinical.models import Case, CaseStatus, EmergencyAccess, ReviewSource
from clinical.schemas import EMERGENCY_REASON_MIN
from clinical.screens import presenting
from clinical.screens.case_form import CaseForm
from clinical.screens.case_list import CaseSearch
from clinical.screens.fields import FormField, pydantic_errors
from clinical.screens.review_form import ReviewForm


def _require_clinician(request: HttpRequest) -> None:
    if roles.CLINICIAN not in roles.roles_of(request.user):
        raise PermissionDenied("only clinicians enter and review cases")


@login_required
@require_http_methods(["GET", "POST"])
def case_new(request: HttpRequest) -> HttpResponse:
    _require_clinician(request)
    if request.method == "GET":
        return render(request, "clinical/case_new.html", CaseForm.blank().context())
    form = CaseForm.from_post(request.POST)
    if form.apply_row_action(request.POST):
        return render(request, "clinical/case_new.html", form.context())
    case_input = form.validate()
    if case_input is None:
        return render(request, "clinical/case_new.html", form.context(), status=400)
    case = services.case_submit(
        case_input=case_input,
        actor=actor_for(request.user, request),
        submitted_by=request.user,
    )
    messages.success(request, "Case submitted. This page updates itself while the model works.")
    return redirect("case-page", case_id=case.id)


def _case_page(
    request: HttpRequest,
    case: Case,
    review_form: ReviewForm | None,
    *,
    status: int = 200,
    emergency: EmergencyAccess | None = None,
) -> HttpResponse:
    services.case_viewed(
        case=case, actor=actor_for(request.user, request), emergency_access=emergency
    )
    answer = presenting.answer(case)
    # Emergency access is read only: the case's own clinician reviews its answer.
    may_review = (
        answer is not None and roles.CLINICIAN in roles.roles_of(request.user) and not emergency
    )
    reviews = presenting.review_history(case)
    if may_review and review_form is None:
        review_form = ReviewForm.initial(answer)
    context = {
        "case": case,
        "summary": presenting.case_summary(case, answer["cited_paths"] if answer else frozenset()),
        "state": presenting.case_status(case, with_queue=True),
        "answer": answer,
        "early_warning": presenting.early_warning(case, answer),
        "not_validated_note": presenting.NOT_VALIDATED_NOTE,
        "calibration_note": answer["calibration_note"] if answer else None,
        "may_rerun": case.status == CaseStatus.FAILED and case.submitted_by_id == request.user.pk,
        "failure_reason": (
            presenting.failure_reason(case) if case.status == CaseStatus.FAILED else ""
        ),
        "sample_reasons": (
            presenting.sample_reasons(case) if case.status == CaseStatus.FAILED else []
        ),
        "reviews": reviews,
        "verdict": presenting.answer_verdict(reviews),
        "may_review": may_review,
        "emergency": emergency,
        **(review_form.context() if may_review and review_form else {}),
    }
    return render(request, "clinical/case_page.html", context, status=status)


@login_required
@require_GET
def case_page(request: HttpRequest, case_id: uuid.UUID) -> HttpResponse:
    opened = presenting.case_opened(request.user, case_id)
    if opened.case is None:
        return _emergency_offer(request, opened, _reason_field(""))
    return _case_page(request, opened.case, None, emergency=opened.emergency)


def _reason_field(value: str) -> FormField:
    return FormField(
        name="reason",
        label="Why you need this case now",
        kind="textarea",
        value=value,
        required=True,
        hint=f"At least {EMERGENCY_REASON_MIN} characters, in your words (for example: "
        "covering the emergency department, patient deteriorating, their clinician unreachable).",
    )


def _emergency_offer(
    request: HttpRequest, opened: presenting.OpenedCase, reason: FormField, *, status: int = 403
) -> HttpResponse:
    """Another clinician's case: refused, with the offer of emergency access. The page names
    no patient and not even the case's id (its form posts to a relative address)."""
    context = {
        # Relative to the page's own address: /cases/{id}/ posts to emergency-access/, a
        # refused reason (shown at /cases/{id}/emergency-access/) to itself.
        "form_action": "./" if status == 400 else "emergency-access/",
        "reason": reason,
        "minutes": settings.BEDSIDE_EMERGENCY_ACCESS_MINUTES,
        "ended": opened.ended,
    }
    return render(request, "clinical/emergency_access.html", context, status=status)


@login_required
@require_POST
def case_emergency_access(request: HttpRequest, case_id: uuid.UUID) -> HttpResponse:
    """Break-glass: a clinician states why they must open another clinician's case."""
    _require_clinician(request)
    opened = presenting.case_opened(request.user, case_id)
    if opened.case is not None and opened.emergency is None:
        return redirect("case-page", case_id=case_id)  # theirs already: nothing to break
    reason = _reason_field(request.POST.get("reason", ""))
    case = Case.objects.get(id=case_id)
    try:
        services.emergency_access_grant(
            case=case,
            person=request.user,
            reason=reason.value,
            actor=actor_for(request.user, request),
            now=timezone.now(),
        )
    except ValidationError as exc:
        reason.errors = [msg for _, msg in pydantic_errors(exc)]
        return _emergency_offer(request, opened, reason, status=400)
    return redirect("case-page", case_id=case_id)


@login_required
@require_POST
def case_review(request: HttpRequest, case_id: uuid.UUID) -> HttpResponse:
    case = presenting.case_for(request.user, case_id)
    _require_clinician(request)
    form = ReviewForm.from_post(request.POST)
    if form.apply_row_action(request.POST):
        return _case_page(request, case, form)
    review = form.validate()
    if review is None:
        return _case_page(request, case, form, status=400)
    try:
        services.review_record(
            case=case,
            review=review,
            actor=actor_for(request.user, request),
            reviewer=request.user,
            source=ReviewSource.FORM,
        )
    except services.ReviewNotPossible as exc:
        messages.error(request, f"The review was not recorded: {exc}.")
        return redirect("case-page", case_id=case.id)
    messages.success(request, "Your review was recorded.")
    return redirect(reverse("case-page", kwargs={"case_id": case.id}) + "#reviews")


@login_required
@require_POST
def case_rerun(request: HttpRequest, case_id: uuid.UUID) -> HttpResponse:
    """A failed case, sent to the model again by the clinician who submitted it."""
    case = presenting.case_for(request.user, case_id)
    if case.submitted_by_id != request.user.pk:
        raise PermissionDenied("only the clinician who submitted a case runs it again")
    try:
        services.case_rerun(case=case, actor=actor_for(request.user, request))
    except services.RerunNotPossible as exc:
        messages.error(request, f"The case was not sent again: {exc}.")
    else:
        messages.success(request, "The case was sent to the model again.")
    return redirect("case-page", case_id=case.id)


@background_poll  # the page's own polling: not a request that keeps the session alive
@require_GET
def case_status(request: HttpRequest, case_id: uuid.UUID) -> JsonResponse:
    """Polled by the case page's script: where the case stands, no patient data."""
    if not request.user.is_authenticated:
        return JsonResponse({"errors": [{"loc": [], "msg": "sign in first"}]}, status=401)
    case = presenting.case_opened(request.user, case_id).case
    if case is None:
        raise Http404("no such case")
    return JsonResponse(presenting.case_status(case, with_queue=True))


@login_required
@require_GET
def case_list(request: HttpRequest) -> HttpResponse:
    if not roles.roles_of(request.user) & roles.CASE_READERS:
        raise PermissionDenied("you have no role in Bedside yet: ask IT to add you to a group")
    search = CaseSearch.from_query(request.GET)
    page = search.page(presenting.my_cases(request.user), request.GET.get("page"))
    # The list names chief complaints: a read of patient data.
    services.cases_listed(
        actor=actor_for(request.user, request),
        count=len(page.object_list),
        filters={"page": page.number, "screen": "my-cases"},
    )
    return render(
        request,
        "clinical/case_list.html",
        {"search": search, "page": page, "rows": search.rows(page)},
        status=400 if search.errors else 200,
    )
