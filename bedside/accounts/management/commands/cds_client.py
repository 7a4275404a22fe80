"""The EHRs allowed to call Bedside's CDS Hooks services: add (or re-key) one with its JWT
issuer and its public keys (a JWKS file, or a JWKS URL fetched and cached), list them,
disable one."""

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from bedside.accounts import ehr_clients
from bedside.accounts.models import EhrClient


class Command(BaseCommand):
    help = "EHR clients of CDS Hooks: add, list, disable."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="register an EHR, or change its keys")
        add.add_argument("--issuer", required=True, help="the iss of the EHR's JWTs")
        keys = add.add_mutually_exclusive_group(required=True)
        keys.add_argument("--jwks-file", type=Path, help="a JSON file {'keys': [public JWKs]}")
        keys.add_argument("--jwks-url", help="where the EHR publishes its JWKS (allowed host)")
        actions.add_parser("list", help="every registered EHR")
        disable = actions.add_parser("disable", help="refuse an EHR's calls from now on")
        disable.add_argument("--issuer", required=True)

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        actor = Actor(label=f"manage.py cds_client {action}", role="admin")
        if action == "list":
            for client in EhrClient.objects.order_by("issuer"):
                state = "disabled" if client.disabled_at else "enabled"
                keys = client.jwks_url or "jwks given"
                kids = ",".join(str(k.get("kid")) for k in (client.jwks or {}).get("keys", []))
                self.stdout.write(f"{state}\t{client.issuer}\t{keys}\tkids={kids}")
            return
        issuer = options["issuer"]
        if action == "disable":
            found = EhrClient.objects.filter(issuer=issuer).first()
            if found is None:
                raise CommandError(f"no EHR client {issuer!r}")
            ehr_clients.ehr_client_disable(client=found, actor=actor)
            self.stdout.write(f"Disabled {issuer}: its calls are refused from now on.")
            return
        jwks = None
        if options.get("jwks_file"):
            try:
                jwks = json.loads(options["jwks_file"].read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read the JWKS file: {exc}") from exc
        try:
            client = ehr_clients.ehr_client_add(
                issuer=issuer, jwks=jwks, jwks_url=options.get("jwks_url") or "", actor=actor
            )
        except ehr_clients.ClientRefused as exc:
            raise CommandError(str(exc)) from exc
        kids = ", ".join(str(k.get("kid")) for k in (client.jwks or {}).get("keys", []))
        self.stdout.write(f"EHR {issuer} may call, with key(s) {kids}.")
