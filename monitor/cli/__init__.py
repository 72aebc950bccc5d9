"""The `monitor` command: serve, worker, demo, migrate, token management, audit, evidence files and face models."""

from __future__ import annotations

import typer

from monitor.cli.admin import migrate, token_create, token_list, token_revoke, token_sign_in_link
from monitor.cli.audit import audit_anchor, audit_rotate_key, audit_verify
from monitor.cli.config import data_dir_exports, token_command
from monitor.cli.demo import run_demo
from monitor.cli.errors import FriendlyGroup
from monitor.cli.evidence import evidence_sweep, evidence_verify
from monitor.cli.faces import faces_models, faces_reenrol
from monitor.cli.serving import run_scheduler, run_worker, serve

__all__ = ["app", "data_dir_exports", "token_command"]

app = typer.Typer(help="云南省职业技能培训监控调度中心 (dispatch center) command line", no_args_is_help=True,
                  cls=FriendlyGroup, pretty_exceptions_enable=False)
token_app = typer.Typer(help="Bearer tokens", no_args_is_help=True, cls=FriendlyGroup,
                        pretty_exceptions_enable=False)
app.add_typer(token_app, name="token")
audit_app = typer.Typer(help="The audit chain (全程留痕)", no_args_is_help=True, cls=FriendlyGroup,
                        pretty_exceptions_enable=False)
app.add_typer(audit_app, name="audit")

evidence_app = typer.Typer(help="Stored evidence files (证据文件核验)", no_args_is_help=True, cls=FriendlyGroup,
                           pretty_exceptions_enable=False)
app.add_typer(evidence_app, name="evidence")

faces_app = typer.Typer(help="Face models and re-enrolment", no_args_is_help=True, cls=FriendlyGroup,
                        pretty_exceptions_enable=False)
app.add_typer(faces_app, name="faces")

app.command()(migrate)
faces_app.command("models")(faces_models)
faces_app.command("re-enrol")(faces_reenrol)
token_app.command("create")(token_create)
token_app.command("sign-in-link")(token_sign_in_link)
token_app.command("list")(token_list)
token_app.command("revoke")(token_revoke)
audit_app.command("verify")(audit_verify)
evidence_app.command("verify")(evidence_verify)
evidence_app.command("sweep")(evidence_sweep)
audit_app.command("anchor")(audit_anchor)
audit_app.command("rotate-key")(audit_rotate_key)
app.command()(serve)
app.command("worker")(run_worker)
app.command("scheduler")(run_scheduler)
app.command("demo")(run_demo)
