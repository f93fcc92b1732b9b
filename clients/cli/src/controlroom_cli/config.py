"""Where the API is and which token to present: environment, profile file, defaults.

Precedence, highest first:

1. ``CONTROLROOM_URL`` and ``CONTROLROOM_TOKEN`` (each on its own: a CI job may set only the
   token);
2. the selected profile of the profile file: ``--profile``, else ``CONTROLROOM_PROFILE``, else
   the file's ``default``;
3. the URL ``make up`` serves on, ``http://127.0.0.1:8789``, and no token.

The profile file is ``CONTROLROOM_CONFIG`` when set, else
``$XDG_CONFIG_HOME/controlroom/config.toml``, else ``~/.config/controlroom/config.toml``::

    default = "dev"

    [profiles.dev]
    url = "http://127.0.0.1:8789"
    token = "eyJ..."

    [profiles.prod]
    url = "https://controlroom.example.com"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from controlroom_cli.errors import ConfigProblem

DEFAULT_URL = "http://127.0.0.1:8789"
PROFILE_KEYS = frozenset({"url", "token"})

PRECEDENCE_HELP = f"""Configuration, highest first:
  1. CONTROLROOM_URL and CONTROLROOM_TOKEN;
  2. the profile chosen by --profile, else CONTROLROOM_PROFILE, else the file's
     `default`, in the file CONTROLROOM_CONFIG, else
     $XDG_CONFIG_HOME/controlroom/config.toml (~/.config/controlroom/config.toml);
  3. {DEFAULT_URL} and no token."""


@dataclass(frozen=True)
class Settings:
    """The resolved configuration, with where each part came from (for ``controlroom config``)."""

    url: str
    token: str | None
    profile: str | None
    config_file: Path
    url_from: str
    token_from: str | None


def config_file(env: Mapping[str, str]) -> tuple[Path, bool]:
    """The profile file's path, and whether it was named explicitly (then it must exist)."""
    if explicit := env.get("CONTROLROOM_CONFIG"):
        return Path(explicit).expanduser(), True
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~"), ".config"))
    return Path(base).expanduser() / "controlroom" / "config.toml", False


def _read(path: Path, must_exist: bool) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if must_exist:
            raise ConfigProblem(f"{path}: no such file (CONTROLROOM_CONFIG)") from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigProblem(f"{path}: cannot be read: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line 3, column 7)": the line is in the message.
        raise ConfigProblem(f"{path}: not valid TOML: {exc}") from None


def _profile(document: dict[str, Any], name: str, path: Path) -> dict[str, str]:
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigProblem(f"{path}: `profiles` must be a table of [profiles.<name>] tables")
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigProblem(f"{path}: no profile {name!r} (profiles: {known})")
    profile = profiles[name]
    if not isinstance(profile, dict):
        raise ConfigProblem(f"{path}: profiles.{name} must be a table")
    unknown = sorted(set(profile) - PROFILE_KEYS)
    if unknown:
        raise ConfigProblem(
            f"{path}: profiles.{name}: unknown key {unknown[0]!r} (known: url, token)"
        )
    for key, value in profile.items():
        if not isinstance(value, str):
            raise ConfigProblem(f"{path}: profiles.{name}.{key} must be a string")
    return dict(profile)


def _check_url(url: str, source: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigProblem(f"{source}: {url!r} is not an http:// or https:// URL")
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port
    except ValueError as exc:  # "http://[::1": an unclosed IPv6 bracket, a bad port
        raise ConfigProblem(f"{source}: {url!r} is not a valid URL ({exc})") from None
    if not host:
        raise ConfigProblem(f"{source}: {url!r} names no host")
    return url.rstrip("/")


def _check_token(token: str, source: str) -> str | None:
    """A token is sent as ``Authorization: Bearer <token>``: printable ASCII without spaces.
    A bad one is refused here, and never echoed (it is a secret, and may be a paste gone wrong)."""
    token = token.strip()
    if not all("!" <= char <= "~" for char in token):
        raise ConfigProblem(
            f"{source}: the token holds a space, a control or a non-ASCII character "
            "(a token is printable ASCII; it is not shown here)"
        )
    return token or None


def resolve(profile_option: str | None, env: Mapping[str, str] | None = None) -> Settings:
    """The configuration for one command, by the precedence above."""
    env = os.environ if env is None else env
    path, explicit = config_file(env)
    document = _read(path, explicit)
    chosen = profile_option or env.get("CONTROLROOM_PROFILE") or None
    if chosen is None:
        default = document.get("default")
        if default is not None and not isinstance(default, str):
            raise ConfigProblem(f"{path}: `default` must be a profile name (a string)")
        chosen = default
    profile = _profile(document, chosen, path) if chosen else {}

    url, url_from = DEFAULT_URL, "default"
    if "url" in profile:
        url, url_from = profile["url"], f"profile {chosen}"
    if env.get("CONTROLROOM_URL"):
        url, url_from = env["CONTROLROOM_URL"], "CONTROLROOM_URL"
    token: str | None = None
    token_from: str | None = None
    if profile.get("token"):
        token, token_from = profile["token"], f"profile {chosen}"
    if env.get("CONTROLROOM_TOKEN"):
        token, token_from = env["CONTROLROOM_TOKEN"], "CONTROLROOM_TOKEN"
    return Settings(
        url=_check_url(url, url_from),
        token=_check_token(token, token_from) if token and token_from else None,
        profile=chosen,
        config_file=path,
        url_from=url_from,
        token_from=token_from,
    )
