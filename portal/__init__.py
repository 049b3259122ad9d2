"""SysGenPro Connect: project settings, URL maps, the Celery app and the page shell."""

from portal.celery import app as celery_app

__all__ = ["celery_app"]
