"""`python -m monitor.cli`: the `monitor` command."""

from monitor.cli import app

app()
