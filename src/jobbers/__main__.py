"""``python -m jobbers`` is the ``jobbers`` command, for environments without its script."""

from jobbers.cli import app

app(prog_name="jobbers")
