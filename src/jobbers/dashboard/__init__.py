"""The operator dashboard at ``/ui``: server-rendered pages over the store, refreshed in place.

Pages and actions read and change state through the store contract only, so the dashboard works
on every backend. With an API token configured it asks for the token once and keeps a session
cookie derived from it; every action must come from the dashboard's own origin.
"""

from jobbers.dashboard import flows as _flows  # noqa: F401  (registers the workflow pages)
from jobbers.dashboard import schedules as _schedules  # noqa: F401  (registers its page)
from jobbers.dashboard.pages import router
from jobbers.dashboard.session import PREFIX, SESSION_PATHS, DashboardAuth

__all__ = ["PREFIX", "SESSION_PATHS", "DashboardAuth", "router"]
