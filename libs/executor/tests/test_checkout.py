"""Checking a job's repository out: real git, real repositories, a real smart-HTTP server."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import SecretStr

from controlroom_contracts import repo_urls
from controlroom_contracts.api import RepoRef
from controlroom_devstack.waiting import eventually
from controlroom_executor.checkout import (
    CheckoutFailed,
    CheckoutSettings,
    check_out,
    validate_repo_url,
)

MiB = 1024 * 1024
TOKEN = "tok-" + uuid4().hex
GIT_ENV = {
    "PATH": os.environ.get("PATH", os.defpath),
    "LC_ALL": "C",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(cwd: Path, *args: str) -> str:
    env = GIT_ENV | {"HOME": str(cwd)}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@dataclass(frozen=True)
class Origin:
    """Bare repositories under ``root``: ``project.git`` (also under ``private/``), ``big.git``
    (random, incompressible) under ``stall/``, ``zeros.git`` (compressible)."""

    root: Path
    first: str
    second: str
    feature: str


def _commit_all(work: Path, message: str) -> str:
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    return git(work, "rev-parse", "HEAD")


def _publish(work: Path, bare: Path) -> None:
    bare.parent.mkdir(parents=True, exist_ok=True)
    git(work.parent, "clone", "-q", "--bare", str(work), str(bare))


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Origin:
    base = tmp_path_factory.mktemp("origin")
    work = base / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text("first\n")
    first = _commit_all(work, "first")
    git(work, "tag", "-a", "v1", "-m", "version 1")
    git(work, "checkout", "-q", "-b", "feature")
    (work / "feature.txt").write_text("feature\n")
    feature = _commit_all(work, "feature")
    git(work, "checkout", "-q", "main")
    (work / "README.md").write_text("second\n")
    (work / "lib").mkdir()
    (work / "lib" / "util.py").write_text("X = 1\n")
    os.symlink("/etc/hostname", work / "link")
    second = _commit_all(work, "second")
    root = base / "served"
    _publish(work, root / "project.git")
    _publish(work, root / "private" / "project.git")

    big = base / "big"
    big.mkdir()
    git(big, "init", "-q", "-b", "main")
    (big / "noise.bin").write_bytes(os.urandom(4 * MiB))
    _commit_all(big, "noise")
    _publish(big, root / "stall" / "big.git")

    zeros = base / "zeros"
    zeros.mkdir()
    git(zeros, "init", "-q", "-b", "main")
    (zeros / "zeros.bin").write_bytes(bytes(8 * MiB))
    _commit_all(zeros, "zeros")
    _publish(zeros, root / "zeros.git")
    return Origin(root, first, second, feature)


class GitHttpServer(ThreadingHTTPServer):
    """Smart HTTP through ``git http-backend`` (CGI), on 127.0.0.1.

    ``/private/...`` needs ``Authorization: <required_authorization>``; ``/stall/...`` sends
    ``stall_after`` bytes of a fetch's pack and then waits for ``release``. Every request
    records its Authorization header, and any process whose argv holds ``TOKEN``."""

    daemon_threads = False  # server_close() joins every handler thread
    block_on_close = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), GitHttpHandler)
        self.root = root
        self.required_authorization = (
            "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
        )
        self.authorizations: list[str | None] = []
        self.argv_leaks: list[str] = []
        self.git_seen: list[str] = []  # proves the look at argv sees git's processes at all
        self.stall_after = 3 * MiB
        self.release = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class GitHttpHandler(BaseHTTPRequestHandler):
    server: GitHttpServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        authorization = self.headers.get("Authorization")
        self.server.authorizations.append(authorization)
        self.server.argv_leaks += _processes_whose_argv_holds(TOKEN.encode())
        self.server.git_seen += _processes_whose_argv_holds(path.split("/info/")[0].encode())
        if path.startswith("/private/") and authorization != self.server.required_authorization:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = GIT_ENV | {
            "HOME": str(self.server.root),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
        }
        for header, variable in (
            ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
            ("Git-Protocol", "GIT_PROTOCOL"),
        ):
            if value := self.headers.get(header):
                env[variable] = value
        backend = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=True
        )
        head, _, payload = backend.stdout.partition(b"\r\n\r\n")  # CGI headers, then the body
        headers = [line.partition(":")[::2] for line in head.decode().splitlines()]
        status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
        self.send_response(status)
        for name, value in headers:
            if name.lower() != "status":
                self.send_header(name, value.strip())
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if path.startswith("/stall/") and path.endswith("/git-upload-pack"):
            self.wfile.write(payload[: self.server.stall_after])
            self.wfile.flush()
            self.server.release.wait(timeout=60)
            return  # the client is gone by now: the rest is never sent
        self.wfile.write(payload)


def _processes_whose_argv_holds(marker: bytes) -> list[str]:
    """Live (not zombie) processes with ``marker`` on their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # exited meanwhile
        if marker in argv and state != "Z":
            found.append(argv.replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.fixture(scope="module")
def http_server(origin: Origin) -> Iterator[GitHttpServer]:
    server = GitHttpServer(origin.root)
    thread = threading.Thread(target=server.serve_forever, name="git-http")
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


@dataclass(frozen=True)
class Transport:
    base: str
    settings: CheckoutSettings


@pytest.fixture(params=["file", "http"])
def transport(
    request: pytest.FixtureRequest, origin: Origin, http_server: GitHttpServer
) -> Transport:
    if request.param == "file":
        return Transport(origin.root.as_uri(), CheckoutSettings(allow_file_urls=True))
    return Transport(http_server.url, CheckoutSettings(allow_insecure_http=True))


@pytest.fixture
def into(tmp_path: Path) -> Path:
    return tmp_path / "workspace"


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() or path.is_symlink()
    }


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("main", {"README.md": b"second\n", "lib/util.py": b"X = 1\n", "link": b"/etc/hostname"}),
        ("v1", {"README.md": b"first\n"}),
        ("feature", {"README.md": b"first\n", "feature.txt": b"feature\n"}),
        ("first-sha", {"README.md": b"first\n"}),
    ],
)
async def test_checks_out_a_branch_a_tag_or_a_commit_without_its_history(
    transport: Transport, origin: Origin, into: Path, ref: str, expected: dict[str, bytes]
) -> None:
    commits = {"main": origin.second, "v1": origin.first, "feature": origin.feature}
    commits["first-sha"] = origin.first
    wanted = origin.first if ref == "first-sha" else ref

    done = await check_out(
        RepoRef(url=f"{transport.base}/project.git", ref=wanted), into, settings=transport.settings
    )

    assert done.commit == commits[ref]
    assert _files(into) == expected
    assert not (into / ".git").exists()


async def test_a_symlink_in_the_repository_becomes_a_plain_file(origin: Origin, into: Path) -> None:
    settings = CheckoutSettings(allow_file_urls=True)
    await check_out(RepoRef(url=f"{origin.root.as_uri()}/project.git"), into, settings=settings)

    assert not (into / "link").is_symlink()
    assert (into / "link").read_text() == "/etc/hostname"


async def test_an_unknown_ref_fails_with_gits_message_and_leaves_the_directory_empty(
    transport: Transport, into: Path
) -> None:
    repo = RepoRef(url=f"{transport.base}/project.git", ref="no-such-branch")

    with pytest.raises(CheckoutFailed, match="couldn't find remote ref no-such-branch"):
        await check_out(repo, into, settings=transport.settings)

    assert list(into.iterdir()) == []


async def test_a_missing_repository_fails_with_gits_message(
    transport: Transport, into: Path
) -> None:
    repo = RepoRef(url=f"{transport.base}/missing.git", ref="main")

    with pytest.raises(CheckoutFailed, match="(?i)not found|does not appear to be a git"):
        await check_out(repo, into, settings=transport.settings)


async def test_a_configured_token_arrives_as_an_authorization_header_and_nowhere_else(
    http_server: GitHttpServer, into: Path
) -> None:
    settings = CheckoutSettings(
        allow_insecure_http=True, credentials={"127.0.0.1": SecretStr(TOKEN)}
    )
    http_server.authorizations.clear()

    await check_out(RepoRef(url=f"{http_server.url}/private/project.git"), into, settings=settings)

    assert http_server.required_authorization in http_server.authorizations
    assert http_server.argv_leaks == []
    assert any("git-remote-http" in argv for argv in http_server.git_seen)
    encoded = http_server.required_authorization.split()[1]
    for content in _files(into).values():
        assert TOKEN.encode() not in content and encoded.encode() not in content


async def test_a_failure_with_a_token_never_shows_the_token(
    http_server: GitHttpServer, into: Path
) -> None:
    settings = CheckoutSettings(
        allow_insecure_http=True, credentials={"127.0.0.1": SecretStr(TOKEN)}
    )
    repo = RepoRef(url=f"{http_server.url}/private/project.git", ref="no-such-branch")

    with pytest.raises(CheckoutFailed) as failed:
        await check_out(repo, into, settings=settings)

    assert "couldn't find remote ref" in str(failed.value)
    assert TOKEN not in str(failed.value)
    assert http_server.required_authorization.split()[1] not in str(failed.value)
    assert http_server.argv_leaks == []


async def test_a_rejected_token_fails_without_prompting_and_without_showing_it(
    http_server: GitHttpServer, into: Path
) -> None:
    wrong = "wrong-" + TOKEN
    settings = CheckoutSettings(
        allow_insecure_http=True, credentials={"127.0.0.1": SecretStr(wrong)}
    )

    with pytest.raises(CheckoutFailed, match="could not read Username") as failed:
        await check_out(
            RepoRef(url=f"{http_server.url}/private/project.git"), into, settings=settings
        )

    assert wrong not in str(failed.value)
    assert base64.b64encode(f"x-access-token:{wrong}".encode()).decode() not in str(failed.value)


async def test_without_a_token_a_private_repository_fails_instead_of_prompting(
    http_server: GitHttpServer, into: Path
) -> None:
    settings = CheckoutSettings(
        allow_insecure_http=True, credentials={"git.example.com": SecretStr(TOKEN)}
    )
    http_server.authorizations.clear()

    with pytest.raises(CheckoutFailed, match="could not read Username"):
        await check_out(
            RepoRef(url=f"{http_server.url}/private/project.git"), into, settings=settings
        )

    assert set(http_server.authorizations) == {None}  # another host's token is never sent


FAKE_SSH = """#!/bin/sh
# Stands in for ssh: records how it was called, then runs the remote command locally.
printf '%s\\n' "$@" > "$0.args"
env > "$0.env"
for command; do :; done
exec sh -c "$command"
"""


async def test_ssh_urls_use_the_configured_key_and_nothing_of_the_executors_environment(
    origin: Origin, into: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ssh = bin_dir / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    settings = CheckoutSettings(ssh_key_file=tmp_path / "deploy key")
    url = f"git@fakehost:{origin.root}/project.git"

    done = await check_out(RepoRef(url=url, ref="v1"), into, settings=settings)

    assert done.commit == origin.first
    args = (bin_dir / "ssh.args").read_text().splitlines()
    assert args[args.index("-i") + 1] == str(tmp_path / "deploy key")
    for option in ("IdentitiesOnly=yes", "StrictHostKeyChecking=accept-new", "BatchMode=yes"):
        assert option in args
    assert "git@fakehost" in args
    env = (bin_dir / "ssh.env").read_text()
    assert "SSH_AUTH_SOCK" not in env and "GIT_DIR" not in env


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret-pw@git.example.com/team/repo.git",
        "https://secret-pw@git.example.com/team/repo.git",
        "ssh://git:secret-pw@git.example.com/team/repo.git",
    ],
)
async def test_a_url_with_embedded_credentials_is_refused(url: str, into: Path) -> None:
    with pytest.raises(CheckoutFailed, match="must not embed credentials") as failed:
        # The contract refuses such a URL at submission; the executor checks again whatever
        # reaches it (a dispatch from an older producer), so the model's check is bypassed.
        await check_out(RepoRef.model_construct(url=url), into, settings=CheckoutSettings())

    assert "secret-pw" not in str(failed.value)
    assert not into.exists() or list(into.iterdir()) == []


async def test_file_urls_are_refused_unless_allowed(origin: Origin, into: Path) -> None:
    repo = RepoRef(url=f"{origin.root.as_uri()}/project.git")

    with pytest.raises(CheckoutFailed, match="file:// repository URLs are not allowed"):
        await check_out(repo, into, settings=CheckoutSettings())


async def test_http_urls_are_refused_unless_allowed(http_server: GitHttpServer, into: Path) -> None:
    repo = RepoRef(url=f"{http_server.url}/project.git")

    with pytest.raises(CheckoutFailed, match="http:// repository URLs are not allowed"):
        await check_out(repo, into, settings=CheckoutSettings())


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/repo.git",
        "https://git.example.com:8443/acme/repo",
        "ssh://git@github.com/acme/repo.git",
        "ssh://github.com:2222/acme/repo.git",
        "git@github.com:acme/repo.git",
        "github.com:acme/repo.git",
    ],
)
def test_accepted_url_forms(url: str) -> None:
    assert validate_repo_url(url) is None
    assert repo_urls.validate_repo_url(url) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("git://github.com/acme/repo.git", "scheme is not allowed"),
        ("ftp://example.com/repo.git", "scheme is not allowed"),
        ("ext::sh -c touch% /tmp/pwned", "spaces"),
        ("ext::sh%20-c%20id", "remote helpers"),
        ("fd::17", "remote helpers"),
        ("/srv/git/repo.git", "not a repository URL"),
        ("./repo", "not a repository URL"),
        ("-uhttps://example.com/x", "must not start with '-'"),
        ("ssh://-oProxyCommand=id/x", "no valid host"),
        ("https:///path-only", "no valid host"),
        ("https://example.com", "no path"),
        ("https://example.com:99999/x", "malformed"),
        ("https://example.com/a\nb", "control characters"),
        ("http://example.com/repo.git", "not allowed"),
        ("file:///etc", "not allowed"),
    ],
)
def test_refused_url_forms(url: str, problem: str) -> None:
    message = validate_repo_url(url)
    assert message is not None and problem in message
    assert repo_urls.validate_repo_url(url) == message


def test_the_settings_decide_about_http_and_file() -> None:
    settings = CheckoutSettings(allow_file_urls=True, allow_insecure_http=True)
    assert validate_repo_url("http://127.0.0.1:8000/repo.git", settings=settings) is None
    assert validate_repo_url("file:///srv/repo.git", settings=settings) is None
    assert validate_repo_url("file://otherhost/srv/repo.git", settings=settings) is not None
    assert validate_repo_url("http://u:p@127.0.0.1/repo.git", settings=settings) is not None


@pytest.mark.parametrize(
    "ref", ["-upload-pack=id", "main:refs/heads/x", "a..b", "HEAD@{1}", "x.lock", "a b", ".hidden"]
)
async def test_a_malformed_ref_is_refused_before_git_runs(
    origin: Origin, into: Path, ref: str
) -> None:
    assert repo_urls.validate_repo_ref(ref) is not None
    settings = CheckoutSettings(allow_file_urls=True)
    with pytest.raises(CheckoutFailed, match="ref"):
        await check_out(
            RepoRef.model_construct(url=f"{origin.root.as_uri()}/project.git", ref=ref),
            into,
            settings=settings,
        )


@pytest.mark.parametrize("ref", ["main", "release/1.2", "v1.0.0", "refs/tags/v1", "a" * 40])
def test_well_formed_refs_are_accepted(ref: str) -> None:
    assert repo_urls.validate_repo_ref(ref) is None


async def test_a_directory_holding_files_is_not_checked_out_into(
    origin: Origin, into: Path
) -> None:
    into.mkdir()
    (into / "keep.txt").write_text("mine")

    with pytest.raises(ValueError, match="not empty"):
        await check_out(
            RepoRef(url=f"{origin.root.as_uri()}/project.git"),
            into,
            settings=CheckoutSettings(allow_file_urls=True),
        )

    assert (into / "keep.txt").read_text() == "mine"


async def test_files_larger_than_the_limit_are_refused_before_they_are_written(
    origin: Origin, into: Path
) -> None:
    settings = CheckoutSettings(allow_file_urls=True, max_bytes=1 * MiB)
    repo = RepoRef(url=f"{origin.root.as_uri()}/zeros.git")

    with pytest.raises(CheckoutFailed, match="larger than the limit of 1048576 bytes") as failed:
        await check_out(repo, into, settings=settings)

    assert f"take {8 * MiB} bytes" in str(failed.value)
    assert list(into.iterdir()) == []


async def test_a_download_growing_past_the_limit_is_stopped(
    http_server: GitHttpServer, into: Path
) -> None:
    settings = CheckoutSettings(allow_insecure_http=True, max_bytes=1 * MiB, timeout_seconds=30)
    repo = RepoRef(url=f"{http_server.url}/stall/big.git")

    # the server never sends the whole pack, so only the watch on the directory can end this
    with pytest.raises(
        CheckoutFailed, match="larger than the limit of 1048576 bytes; git was stopped"
    ):
        await check_out(repo, into, settings=settings)

    assert list(into.iterdir()) == []


@dataclass
class SilentServer:
    """Accepts connections and never says a word."""

    port: int
    connected: asyncio.Event
    disconnected: asyncio.Event


@pytest.fixture
async def silent_server() -> AsyncIterator[SilentServer]:
    connected, disconnected = asyncio.Event(), asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        while await reader.read(65536):  # until the client is gone
            pass
        disconnected.set()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield SilentServer(port, connected, disconnected)
        await eventually(_is_set(disconnected), what="the client gone", timeout=10)


def _is_set(event: asyncio.Event) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return event.is_set()

    return check


async def _no_git_process_mentions(*markers: str) -> bool:
    return not any(_processes_whose_argv_holds(marker.encode()) for marker in markers)


async def test_a_server_that_never_answers_fails_at_the_deadline_leaving_no_git_behind(
    silent_server: SilentServer, into: Path
) -> None:
    ref = f"never-{uuid4().hex}"
    url = f"http://127.0.0.1:{silent_server.port}/project.git"
    settings = CheckoutSettings(allow_insecure_http=True, timeout_seconds=1)
    checkout = asyncio.create_task(check_out(RepoRef(url=url, ref=ref), into, settings=settings))
    await eventually(_is_set(silent_server.connected), what="git connected", timeout=10)
    assert _processes_whose_argv_holds(ref.encode()), "git should be running now"

    with pytest.raises(CheckoutFailed, match="did not finish within 1 seconds"):
        await checkout

    assert list(into.iterdir()) == []
    await eventually(
        lambda: _no_git_process_mentions(ref, f"127.0.0.1:{silent_server.port}"),
        what="no git process left",
        timeout=10,
    )


async def test_a_cancelled_checkout_stops_git(silent_server: SilentServer, into: Path) -> None:
    ref = f"cancelled-{uuid4().hex}"
    url = f"http://127.0.0.1:{silent_server.port}/project.git"
    settings = CheckoutSettings(allow_insecure_http=True, timeout_seconds=60)
    checkout = asyncio.create_task(check_out(RepoRef(url=url, ref=ref), into, settings=settings))
    await eventually(_is_set(silent_server.connected), what="git connected", timeout=10)

    checkout.cancel()
    with pytest.raises(asyncio.CancelledError):
        await checkout

    assert list(into.iterdir()) == []
    await eventually(
        lambda: _no_git_process_mentions(ref, f"127.0.0.1:{silent_server.port}"),
        what="no git process left",
        timeout=10,
    )
