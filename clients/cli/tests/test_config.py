"""Where the CLI connects, and with which token: environment over profile over defaults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controlroom_cli.config import DEFAULT_URL, resolve
from controlroom_cli.errors import ConfigProblem

PROFILES = """
default = "dev"

[profiles.dev]
url = "http://dev.example:8789/"
token = "dev-token"

[profiles.prod]
url = "https://prod.example"
token = "prod-token"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_nothing_configured_means_make_up_and_no_token(tmp_path: Path) -> None:
    settings = resolve(None, {"HOME": str(tmp_path)})
    assert (settings.url, settings.token, settings.profile) == (DEFAULT_URL, None, None)
    assert settings.config_file == tmp_path / ".config" / "controlroom" / "config.toml"


def test_the_file_default_profile_is_used_under_xdg_config_home(tmp_path: Path) -> None:
    write(tmp_path / "xdg" / "controlroom" / "config.toml", PROFILES)
    settings = resolve(None, {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": "/nowhere"})
    assert settings.url == "http://dev.example:8789"  # the trailing slash is dropped
    assert (settings.token, settings.profile) == ("dev-token", "dev")
    assert (settings.url_from, settings.token_from) == ("profile dev", "profile dev")


def test_profile_option_beats_environment_profile_beats_default(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", PROFILES)
    env = {"CONTROLROOM_CONFIG": str(path), "CONTROLROOM_PROFILE": "prod"}
    assert resolve(None, env).url == "https://prod.example"
    assert resolve("dev", env).url == "http://dev.example:8789"


def test_environment_overrides_each_part_of_the_profile(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", PROFILES)
    only_token = resolve("prod", {"CONTROLROOM_CONFIG": str(path), "CONTROLROOM_TOKEN": "ci"})
    assert (only_token.url, only_token.token) == ("https://prod.example", "ci")
    assert only_token.token_from == "CONTROLROOM_TOKEN"
    only_url = resolve("prod", {"CONTROLROOM_CONFIG": str(path), "CONTROLROOM_URL": "http://x"})
    assert (only_url.url, only_url.token) == ("http://x", "prod-token")


def test_controlroom_config_names_the_file_and_it_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigProblem, match="no such file"):
        resolve(None, {"CONTROLROOM_CONFIG": str(tmp_path / "missing.toml")})


def test_an_unknown_profile_names_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", PROFILES)
    with pytest.raises(ConfigProblem, match=r"no profile 'staging' \(profiles: dev, prod\)"):
        resolve("staging", {"CONTROLROOM_CONFIG": str(path)})


def test_bad_toml_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", 'default = "dev"\n[profiles.dev\nurl = 1\n')
    with pytest.raises(ConfigProblem, match=r"c.toml: not valid TOML: .*line 2"):
        resolve(None, {"CONTROLROOM_CONFIG": str(path)})


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ('[profiles.dev]\nurl = "http://a"\ntokn = "x"\n', "unknown key 'tokn'"),
        ("[profiles.dev]\nurl = 8789\n", "profiles.dev.url must be a string"),
        ('[profiles.dev]\nurl = "ftp://a"\n', "is not an http:// or https:// URL"),
    ],
)
def test_a_mistyped_profile_is_refused(tmp_path: Path, profile: str, message: str) -> None:
    path = write(tmp_path / "c.toml", profile)
    with pytest.raises(ConfigProblem, match=message):
        resolve("dev", {"CONTROLROOM_CONFIG": str(path)})


def test_config_command_shows_the_resolution_without_the_token(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "c.toml", PROFILES)
    monkeypatch.setenv("CONTROLROOM_CONFIG", str(path))
    monkeypatch.delenv("CONTROLROOM_URL")
    code, out, _ = cli("config", "--profile", "prod", "--json")
    assert code == 0
    assert '"url": "https://prod.example"' in out and "prod-token" not in out
    assert '"token_from": "CONTROLROOM_TOKEN"' in out


@pytest.mark.parametrize("token", ["abc\ndef", "abc def", "abc\x07def", "jeton-é"])
def test_a_token_with_a_space_control_or_non_ascii_character_is_refused_unshown(
    token: str,
) -> None:
    with pytest.raises(ConfigProblem) as refused:
        resolve(None, {"HOME": "/nowhere", "CONTROLROOM_TOKEN": token})
    assert "CONTROLROOM_TOKEN" in refused.value.message
    assert "abc" not in refused.value.message and "jeton" not in refused.value.message
    assert "\n" not in refused.value.message


def test_a_token_with_surrounding_whitespace_is_trimmed() -> None:
    assert resolve(None, {"HOME": "/nowhere", "CONTROLROOM_TOKEN": " t0k \n"}).token == "t0k"


@pytest.mark.parametrize("url", ["http://[::1", "http://host:port", "http://"])
def test_a_url_that_does_not_parse_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigProblem, match="CONTROLROOM_URL"):
        resolve(None, {"HOME": "/nowhere", "CONTROLROOM_URL": url})


def test_a_refused_header_is_never_quoted_in_the_error_line() -> None:
    from controlroom_cli.client import reason

    line = reason(Exception("illegal header value b'Bearer s3cret\\n'"))
    assert "s3cret" not in line and line == "illegal header value (not shown)"
