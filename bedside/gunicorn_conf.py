"""gunicorn settings for deploy/systemd/bedside-web.service and `make run` (``--config
python:bedside.gunicorn_conf``).

The access log names the path, never the query string nor the Referer: FHIR intake takes
the chief complaint and the question as query parameters and case lists filter by
external id, so a full request line can carry patient data. The last field is the request
id Bedside answered with (X-Request-ID of the response: the caller's when it sent a safe
one, else the one Bedside made), the id on the web's and the worker's log lines. Every
field has its control characters escaped (``EscapingLogger``): a path such as
``/cases/%0d%0a127.0.0.1 - - FORGED`` is one line, never two. The first field is the
client's address by the trusted-proxy rule (``BEDSIDE_TRUSTED_PROXIES``,
``bedside.http.addresses``), as in audit events: behind the shipped nginx it is the person's
machine, not 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from bedside.logformat import escape_controls

access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(L)s "%(a)s" %({x-request-id}o)s'
)


class EscapingLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type information
    """gunicorn's logger, with CR, LF and every other control character in the access
    log's fields (the decoded path, the User-Agent, any header) escaped."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["h"] = _client(environ) or atoms.get("h", "-")
        return {
            name: escape_controls(value) if isinstance(value, str) else value
            for name, value in atoms.items()
        }


def _client(environ: Any) -> str | None:
    """The client by the trusted-proxy rule; None (the peer, as gunicorn has it) when the
    rule cannot be read, so that a log line is never lost."""
    try:
        from bedside.http.addresses import client_address

        return client_address(environ)
    except Exception:
        return None


logger_class = EscapingLogger
