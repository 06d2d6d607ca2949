"""`valerix auth token` and `valerix orders ship`: the operator's tools. Operator tokens are
minted here, from the signing key, and never by the API."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import click

from valerix.kit.auth import MAX_OPERATOR_TTL, AuthSettings, Identity, Role, Tokens, parse_ttl

LOCAL_KEY = Path(".valerix/auth-signing-key")   # what scripts/up generates


def _tokens(key_file: Path | None) -> Tokens:
    settings = AuthSettings()
    if key_file is not None:
        settings = AuthSettings(auth_signing_key_file=key_file, auth_signing_key=None)
    elif settings.auth_signing_key is None and settings.auth_signing_key_file is None and LOCAL_KEY.exists():
        settings = AuthSettings(auth_signing_key_file=LOCAL_KEY)
    try:
        return Tokens(settings.key())
    except (RuntimeError, OSError) as error:
        raise click.ClickException(str(error)) from None


def _ttl(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    try:
        ttl = parse_ttl(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if ttl > MAX_OPERATOR_TTL:
        raise click.BadParameter(f"at most {MAX_OPERATOR_TTL.days}d")
    return ttl


key_option = click.option("--key-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
                          help="The signing key (default: AUTH_SIGNING_KEY[_FILE], else .valerix/auth-signing-key).")


@click.group()
def auth() -> None:
    """Bearer tokens for the order API."""


@auth.command()
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.OPERATOR.value, show_default=True)
@click.option("--ttl", default="8h", show_default=True, callback=_ttl, help="30m, 8h, 2d (at most 7d).")
@click.option("--subject", default=None, help="Who the token names (default: $USER, or a new customer id).")
@key_option
def token(role: str, ttl: timedelta, subject: str | None, key_file: Path | None) -> None:
    """Print a token; it is the last line of stdout."""
    tokens = _tokens(key_file)
    name = subject or (f"operator:{os.environ.get('USER', 'cli')}" if role == Role.OPERATOR.value else None)
    if name is None:
        issued = tokens.guest()
    else:
        if not 0 < len(name) <= 64:
            raise click.BadParameter("1-64 characters", param_hint="--subject")
        issued = tokens.issue(Identity(name, Role(role)), ttl)
    click.echo(f"# {issued.identity.role} {issued.identity.subject}, expires {issued.expires_at.isoformat()}",
               err=True)
    click.echo(issued.token)


@click.group()
def orders() -> None:
    """Operator actions on orders, through the order API."""


@orders.command()
@click.argument("order_id")
@click.option("--api", default="http://127.0.0.1:3000", envvar="VALERIX_API_URL", show_default=True)
@key_option
def ship(order_id: str, api: str, key_file: Path | None) -> None:
    """Ship a confirmed order (POST /api/orders/ID/ship with a short operator token)."""
    import httpx

    issued = _tokens(key_file).issue(Identity(f"operator:{os.environ.get('USER', 'cli')}", Role.OPERATOR),
                                     timedelta(minutes=5))
    try:
        response = httpx.post(f"{api.rstrip('/')}/api/orders/{quote(order_id, safe='')}/ship",
                              headers={"Authorization": f"Bearer {issued.token}"}, timeout=10)
    except httpx.HTTPError as error:
        raise click.ClickException(f"the order API at {api} did not answer: {error}") from None
    try:
        body = response.json()
    except ValueError:
        body = {"status": response.status_code, "detail": response.text[:200]}
    click.echo(json.dumps(body, indent=2))
    if response.status_code != 200:
        sys.exit(1)
