"""The supervisord configuration of the local stack: the database program runs as its own user,
first up and last down, without the services' secrets."""

from __future__ import annotations

import configparser

from valerix.local.supervisor import Program, write_config


def read(tmp_path, programs):
    parser = configparser.RawConfigParser()
    parser.read(write_config(tmp_path, programs, {"ORDER_DATABASE_URL": "postgresql://u:secret@h/db"}))
    return parser


def test_a_database_program_runs_first_as_its_user_without_the_shared_environment(tmp_path):
    parser = read(tmp_path, [
        Program("postgres", ["/pg/bin/postgres", "-D", "/data"], {"LC_ALL": "C"}, user="valerixpg", priority=1,
                stopsignal="INT", shared_env=False),
        Program("order-api", ["valerix", "order", "api"], {"ORDER_API_BIND": "127.0.0.1:1"}),
    ])
    pg, api = parser["program:postgres"], parser["program:order-api"]
    assert (pg["user"], pg["priority"], pg["stopsignal"]) == ("valerixpg", "1", "INT")
    assert "secret" not in pg["environment"] and 'LC_ALL="C"' in pg["environment"]
    assert "user" not in api and int(api["priority"]) > int(pg["priority"]) and api["stopsignal"] == "TERM"
    assert "secret" in api["environment"] and "ORDER_API_BIND" in api["environment"]
    assert pg["autorestart"] == "true" and pg["startretries"] == "1000"
