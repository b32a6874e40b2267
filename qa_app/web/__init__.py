"""The web app: one view computes a result, then renders it as HTML or JSON."""

from qa_app.web.app import app_from_environment, create_app

__all__ = ["app_from_environment", "create_app"]
