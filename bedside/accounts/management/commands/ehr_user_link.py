"""Link an EHR's user (CDS Hooks ``context.userId``) to a Bedside clinician, list the links
(pending ones are EHR users seen but not yet linked), or disable one."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from bedside.accounts import services as accounts_services
from bedside.accounts.models import EhrUserLink, EhrUserLinkStatus


class Command(BaseCommand):
    help = "EHR users linked to Bedside clinicians: list, attach, disable."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="every link, or only one status")
        listing.add_argument("--status", choices=EhrUserLinkStatus.values)
        for name, text in (
            ("attach", "link an EHR user to a clinician (made if not yet seen)"),
            ("disable", "stop using a link"),
        ):
            action = actions.add_parser(name, help=text)
            action.add_argument("--issuer", required=True, help="the EHR's JWT iss")
            action.add_argument(
                "--ehr-user", required=True, help="context.userId, e.g. Practitioner/123"
            )
            if name == "attach":
                action.add_argument("--user", required=True, help="the clinician's username")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        actor = Actor(label=f"manage.py ehr_user_link {action}", role="admin")
        if action == "list":
            links = EhrUserLink.objects.select_related("user").order_by("issuer", "ehr_user_id")
            if options.get("status"):
                links = links.filter(status=options["status"])
            for link in links:
                who = link.user.get_username() if link.user else "-"
                self.stdout.write(f"{link.status}\t{link.issuer}\t{link.ehr_user_id}\t{who}")
            return
        issuer, ehr_user = options["issuer"], options["ehr_user"]
        if action == "attach":
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"no Bedside user {options['user']!r}")
            link = accounts_services.ehr_user_link_seen(
                issuer=issuer, ehr_user_id=ehr_user, actor=actor
            )
            try:
                accounts_services.ehr_user_link_attach(link=link, user=user, actor=actor)
            except accounts_services.LinkRefused as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"{ehr_user} of {issuer} is now {user.get_username()}.")
            return
        found = EhrUserLink.objects.filter(issuer=issuer, ehr_user_id=ehr_user).first()
        if found is None:
            raise CommandError(f"no link for {ehr_user} of {issuer}")
        accounts_services.ehr_user_link_disable(link=found, actor=actor)
        self.stdout.write(f"Disabled the link of {ehr_user} of {issuer}.")
