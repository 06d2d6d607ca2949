"""supervisord configuration for the local stack."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Program:
    name: str
    command: list[str]
    env: dict[str, str]
    user: str | None = None
    priority: int = 999          # lower starts first and stops last
    stopsignal: str = "TERM"
    shared_env: bool = True      # False: only its own env (the database needs no app secrets)


def _env_line(env: dict[str, str]) -> str:
    # supervisor's own quoting: values in double quotes, with % and " escaped.
    items = []
    for key, value in sorted(env.items()):
        escaped = value.replace("%", "%%").replace('"', '\\"')
        items.append(f'{key}="{escaped}"')
    return ",".join(items)


def write_config(home: Path, programs: list[Program], common_env: dict[str, str]) -> Path:
    lines = [
        "[unix_http_server]", f"file={home / 'run' / 'supervisor.sock'}", "chmod=0700", "",
        "[supervisord]", f"logfile={home / 'log' / 'supervisord.log'}",
        f"pidfile={home / 'run' / 'supervisord.pid'}", "nodaemon=true", "loglevel=warn",
        *(["user=root"] if os.geteuid() == 0 else []), "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        "[supervisorctl]", f"serverurl=unix://{home / 'run' / 'supervisor.sock'}", "",
    ]
    for program in programs:
        env = {**(common_env if program.shared_env else {}), **program.env}
        lines += [
            f"[program:{program.name}]",
            f"command={shlex.join(program.command).replace('%', '%%')}",
            f"directory={home}",
            f"environment={_env_line(env)}",
            *([f"user={program.user}"] if program.user else []),
            f"priority={program.priority}", f"stopsignal={program.stopsignal}",
            "autostart=true", "autorestart=true", "startsecs=1", "startretries=1000",
            "stopasgroup=true", "killasgroup=true", "stopwaitsecs=15", "redirect_stderr=true",
            f"stdout_logfile={home / 'log' / (program.name + '.log')}",
            "stdout_logfile_maxbytes=20MB", "stdout_logfile_backups=2", "",
        ]
    path = home / "supervisord.conf"
    path.write_text("\n".join(lines))
    path.chmod(0o600)
    return path
