"""WSGI entry point (gunicorn clinical.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinical.settings")
application = get_wsgi_application()
