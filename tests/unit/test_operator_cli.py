"""`valerix auth token`: the operator's token is the last line of stdout, signed with the key."""

from __future__ import annotations

from click.testing import CliRunner

from valerix.cli import main
from valerix.kit.auth import Role, Tokens, new_signing_key

KEY = new_signing_key()


def run(*args: str, **env: str):
    return CliRunner().invoke(main, list(args), env={"AUTH_SIGNING_KEY": KEY, "AUTH_SIGNING_KEY_FILE": None, **env})


def test_an_operator_token_is_the_last_line_of_stdout():
    result = run("auth", "token", "--role", "operator", "--ttl", "8h")
    assert result.exit_code == 0, result.output
    identity = Tokens(KEY.encode()).verify(result.stdout.strip().splitlines()[-1])
    assert identity.role is Role.OPERATOR and identity.is_operator


def test_a_customer_token_and_bad_ttls():
    result = run("auth", "token", "--role", "customer")
    assert Tokens(KEY.encode()).verify(result.stdout.strip().splitlines()[-1]).role is Role.CUSTOMER
    for ttl in ("8", "0h", "30d", "forever"):
        refused = run("auth", "token", "--ttl", ttl)
        assert refused.exit_code == 2 and "--ttl" in refused.output


def test_without_a_key_it_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["auth", "token"], env={"AUTH_SIGNING_KEY": None, "AUTH_SIGNING_KEY_FILE": None})
    assert result.exit_code == 1 and "AUTH_SIGNING_KEY" in result.output
