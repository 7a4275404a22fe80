"""WSGI entry point (gunicorn bedside.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bedside.settings")
application = get_wsgi_application()
