"""gunicorn settings for deploy/systemd/bedside-web.service and `make run` (``--config
python:bedside.gunicorn_conf``).

The access log names the path, never the query string nor the Referer: FHIR intake takes
the chief complaint and the question as query parameters and case lists filter by
external id, so a full request line can carry patient data. The last field is the request
id Bedside answered with (X-Request-ID of the response: the caller's when it sent a safe
one, else the one Bedside made), the id on the web's and the worker's log lines.
"""

access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(L)s "%(a)s" %({x-request-id}o)s'
)
