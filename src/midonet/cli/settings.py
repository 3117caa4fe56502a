"""Where the CLI finds the API and the credentials: options, then environment, then `~/.midonetrc`.

Each setting is taken from the first place that gives it:

    setting     option        environment           ~/.midonetrc ([cli] section)   default
    API URL     --api         MIDONET_API_URL       api_url                        http://127.0.0.1:8181/midonet-api
    user        --username    MIDONET_USERNAME      username                       admin
    password    --password    MIDONET_PASSWORD      password                       (required)
    project     --project     MIDONET_PROJECT_ID    project_id                     (none)

`~/.midonetrc` is the file MidoNet's own `midonet-cli` reads (INI):

    [cli]
    api_url = http://127.0.0.1:8181/midonet-api
    username = admin
    password = ...
    project_id = admin

Connection options may be given before the command (`midonet --api URL list bridges`) or after it
(`midonet list bridges --api URL`); the later one wins.

May import: `midonet.client` (for the default URL). Reads files and the environment; no network.
"""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from midonet.client import DEFAULT_API_URL

RC_FILE = ".midonetrc"
RC_SECTION = "cli"
DEFAULT_USERNAME = "admin"

# setting -> (environment variable, ~/.midonetrc key)
SOURCES: Mapping[str, tuple[str, str]] = {
    "api_url": ("MIDONET_API_URL", "api_url"),
    "username": ("MIDONET_USERNAME", "username"),
    "password": ("MIDONET_PASSWORD", "password"),
    "project": ("MIDONET_PROJECT_ID", "project_id"),
}


class SettingsError(Exception):
    """A setting is missing or a settings file is unreadable; the message says which and where."""


@dataclass(frozen=True, slots=True)
class Connection:
    """Connection settings given as options; None where an option was not given."""

    api_url: str | None = None
    username: str | None = None
    password: str | None = None
    project: str | None = None

    def over(self, other: Connection | None) -> Connection:
        """These options, falling back to `other`'s (options given earlier on the command line)."""
        if other is None:
            return self
        return Connection(self.api_url or other.api_url, self.username or other.username,
                          self.password or other.password, self.project or other.project)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything needed to talk to an API, resolved."""

    api_url: str
    username: str
    password: str
    project: str | None


def read_rc(home: Path) -> dict[str, str]:
    """The `[cli]` section of `<home>/.midonetrc`; empty when there is no such file or section."""
    path = home / RC_FILE
    if not path.is_file():
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as e:
        raise SettingsError(f"{path}: cannot read it: {e}") from None
    if not parser.has_section(RC_SECTION):
        return {}
    return {k: v.strip() for k, v in parser.items(RC_SECTION) if v.strip()}


def resolve(options: Connection, env: Mapping[str, str], home: Path) -> Settings:
    """Pick each setting from `options`, else `env`, else `<home>/.midonetrc`, else its default."""
    rc = read_rc(home)
    given = {"api_url": options.api_url, "username": options.username, "password": options.password,
             "project": options.project}
    found: dict[str, str | None] = {}
    for name, (env_var, rc_key) in SOURCES.items():
        found[name] = given[name] or env.get(env_var) or rc.get(rc_key) or None
    password = found["password"]
    if password is None:
        raise SettingsError("no password: give --password, set MIDONET_PASSWORD, or put `password = ...` in the "
                            f"[{RC_SECTION}] section of ~/{RC_FILE}")
    return Settings(api_url=found["api_url"] or DEFAULT_API_URL, username=found["username"] or DEFAULT_USERNAME,
                    password=password, project=found["project"])
