"""Unit tests of the CLI: no server; the API, where one is needed, is an httpx MockTransport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from controlroom_cli.app import run
from controlroom_cli.client import Api
from controlroom_cli.config import Settings

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No configuration leaks in from the machine running the tests."""
    for name in (
        "CONTROLROOM_URL",
        "CONTROLROOM_TOKEN",
        "CONTROLROOM_PROFILE",
        "CONTROLROOM_CONFIG",
        "CONTROLROOM_DEBUG",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CONTROLROOM_URL", "http://api.test")
    monkeypatch.setenv("CONTROLROOM_TOKEN", "test-token")
    yield


@pytest.fixture
def answer(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], None]:
    """``answer(handler)``: every Api the commands open is answered by ``handler``."""

    def install(handler: Handler) -> None:
        original = Api.__init__

        def init(
            self: Api, settings: Settings, _transport: httpx.BaseTransport | None = None
        ) -> None:
            original(self, settings, httpx.MockTransport(handler))

        monkeypatch.setattr(Api, "__init__", init)

    return install


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``cli(*args)``: run a command in-process; its exit code, stdout and stderr."""

    def invoke(*args: str) -> tuple[int, str, str]:
        code = run(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke
