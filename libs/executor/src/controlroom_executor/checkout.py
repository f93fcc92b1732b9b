"""Check a job's repository out into its workspace, before the job's code files are laid over.

``git init`` + ``git fetch --depth 1 origin <ref>`` + ``git checkout FETCH_HEAD`` handles a
branch, a tag and (where the server allows it) a full commit sha. git sees nothing of the
executor's environment but PATH and the proxy variables: no GIT_* variables, no system or user
config, no ssh agent, no credential helpers, no hooks, no submodules, no symlinks, only the
allowed protocols. A token reaches git
through ``GIT_CONFIG_*`` variables (never argv, never the URL) and is scrubbed from every message.
The whole checkout is bounded in time and in bytes on disk; at either limit git's process group
is killed. The history is removed afterwards: the job gets the files, the run records the sha.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shlex
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from controlroom_contracts import repo_urls
from controlroom_contracts.api import RepoRef

POLL_SECONDS = 0.1
"""How often the size of the checkout directory is measured while git writes to it."""
STDERR_TAIL = 2048
DEFAULT_TOKEN_USER = "x-access-token"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_AUTH_HEADER = re.compile(r"(authorization:\s*)[^\r\n]*", re.IGNORECASE)


class CheckoutSettings(BaseModel):
    """How an executor checks repositories out (embedded in the executor's settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: float = Field(default=60.0, gt=0)
    max_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    allow_file_urls: bool = False
    """file:// would let a job read the executor's own disk: tests only."""
    allow_insecure_http: bool = False
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    """Host (or ``host:port``) to a token for https, sent as HTTP Basic authentication with
    the user ``x-access-token``; write ``user:token`` to choose the user (Bitbucket wants
    ``x-token-auth``)."""
    ssh_key_file: Path | None = None
    ssh_known_hosts_file: Path | None = None
    """Pinned host keys for ssh; without it any host key is accepted on first (every) use."""


@dataclass(frozen=True)
class CheckedOut:
    commit: str
    """The full sha of the commit now in the workspace."""


class CheckoutFailed(Exception):
    """The repository could not be checked out; the message is git's stderr, redacted."""


def validate_repo_url(url: str, *, settings: CheckoutSettings | None = None) -> str | None:
    """Why this executor would refuse ``url`` (None: it would try it)."""
    settings = settings or CheckoutSettings()
    return repo_urls.validate_repo_url(
        url,
        allow_file=settings.allow_file_urls,
        allow_insecure_http=settings.allow_insecure_http,
    )


async def check_out(repo: RepoRef, into: Path, *, settings: CheckoutSettings) -> CheckedOut:
    """Check ``repo`` out at its ref into ``into`` (absent or empty), without ``.git``.

    Raises :class:`CheckoutFailed` (URL refused, git failed, a limit reached), leaving ``into``
    empty; raises ValueError when ``into`` already holds files.
    """
    problem = validate_repo_url(repo.url, settings=settings) or repo_urls.validate_repo_ref(
        repo.ref
    )
    if problem is not None:
        raise CheckoutFailed(problem)
    into.mkdir(parents=True, exist_ok=True)
    if any(into.iterdir()):
        raise ValueError(f"{into} is not empty: a checkout needs an empty directory")
    with tempfile.TemporaryDirectory(prefix="controlroom-git-home-") as home:
        git = _Git(repo.url, into, Path(home), settings)
        try:
            await git.run("init", "-q", "--template=", ".")
            await git.run("remote", "add", "origin", repo.url)
            await git.run(
                "fetch", "-q", "--depth", "1", "--no-tags", "--no-recurse-submodules",
                "origin", repo.ref, watch=True,
            )  # fmt: skip
            await git.check_files_fit(repo.ref)
            await git.run("checkout", "-q", "FETCH_HEAD", "--", watch=True)
            head = await git.run("rev-parse", "--verify", "HEAD^{commit}", capture=True)
            await asyncio.to_thread(shutil.rmtree, into / ".git")
        except BaseException:
            await asyncio.to_thread(_empty, into)
            raise
    return CheckedOut(commit=head.decode().strip())


class _Git:
    """Runs git for one checkout: its environment, its deadline, its redactions."""

    def __init__(self, url: str, into: Path, home: Path, settings: CheckoutSettings) -> None:
        self._into = into
        self._settings = settings
        self._deadline = asyncio.get_running_loop().time() + settings.timeout_seconds
        self._secrets: list[str] = []
        self._env = _environment(home, settings)
        self._options = _options(settings)
        header = self._auth_header(url)
        if header is not None:
            key, value = header
            self._env |= {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": key}
            self._env["GIT_CONFIG_VALUE_0"] = value

    def _auth_header(self, url: str) -> tuple[str, str] | None:
        """The ``http.<url>.extraHeader`` for the URL's host, scoped to it, if one is set."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("https", "http") or not parts.hostname:
            return None
        host = parts.hostname.lower()
        credentials = self._settings.credentials
        token = credentials.get(f"{host}:{parts.port}") if parts.port else None
        token = token or credentials.get(host)
        if token is None:
            return None
        secret = token.get_secret_value()
        pair = secret if ":" in secret else f"{DEFAULT_TOKEN_USER}:{secret}"
        encoded = base64.b64encode(pair.encode()).decode()
        self._secrets += [secret, pair, encoded, *secret.split(":")]
        return (
            f"http.{parts.scheme}://{parts.netloc}/.extraHeader",
            f"Authorization: Basic {encoded}",
        )

    async def check_files_fit(self, ref: str) -> None:
        """Refuse before writing them when the fetched files would pass the size limit (a
        small compressed pack can hold a huge file)."""
        listing = await self.run("ls-tree", "-r", "-l", "-z", "FETCH_HEAD", capture=True)
        files = sum(
            int(entry.split(b"\t", 1)[0].split()[3])
            for entry in listing.split(b"\0")
            if entry and entry.split(b" ", 2)[1] == b"blob"
        )
        used = await asyncio.to_thread(_disk_usage, self._into)
        if used + files > self._settings.max_bytes:
            raise CheckoutFailed(
                f"the repository is larger than the limit of {self._settings.max_bytes} bytes"
                f" (the files at {ref} take {files} bytes)"
            )

    async def run(self, *args: str, watch: bool = False, capture: bool = False) -> bytes:
        """Run one git command in its own process group; its stdout when ``capture``."""
        process = await asyncio.create_subprocess_exec(
            "git", *self._options, *args,
            cwd=self._into,
            env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: git's helpers die with it
        )  # fmt: skip
        assert process.stderr is not None
        stderr = asyncio.ensure_future(_tail(process.stderr))
        stdout = asyncio.ensure_future(process.stdout.read()) if process.stdout else None
        exited = asyncio.ensure_future(process.wait())
        try:
            limit = await self._supervise(exited, watch)
        finally:
            # also on cancellation; a helper outliving git would hold stderr open
            _kill_group(process.pid)
            await exited
            tail = self._redact((await stderr).decode(errors="replace").strip())
            output = await stdout if stdout is not None else b""
        if limit is not None:
            raise CheckoutFailed(f"{limit}: {tail}" if tail else limit)
        if process.returncode != 0:
            raise CheckoutFailed(tail or f"git {args[0]} exited with code {process.returncode}")
        return output

    async def _supervise(self, exited: asyncio.Future[int], watch: bool) -> str | None:
        """Wait for git to exit; the limit it reached instead, if any."""
        loop = asyncio.get_running_loop()
        while True:
            remaining = self._deadline - loop.time()
            if remaining <= 0:
                return (
                    f"the checkout did not finish within {self._settings.timeout_seconds:g}"
                    " seconds; git was stopped"
                )
            done, _ = await asyncio.wait(
                {exited}, timeout=min(POLL_SECONDS, remaining) if watch else remaining
            )
            if done:
                return None
            if watch and await asyncio.to_thread(_disk_usage, self._into) > (
                self._settings.max_bytes
            ):
                return (
                    f"the repository is larger than the limit of {self._settings.max_bytes}"
                    " bytes; git was stopped"
                )

    def _redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if len(secret) >= 4:  # a one-letter "user" must not blank out every such letter
                text = text.replace(secret, "***")
        text = _USERINFO.sub("***@", text)
        return _AUTH_HEADER.sub(r"\1***", text)[-STDERR_TAIL:]


def _options(settings: CheckoutSettings) -> list[str]:
    protocols = ["https", "ssh"]
    if settings.allow_insecure_http:
        protocols.append("http")
    if settings.allow_file_urls:
        protocols.append("file")
    config = [
        "protocol.allow=never",
        *(f"protocol.{name}.allow=always" for name in protocols),
        "core.hooksPath=/dev/null",
        "submodule.recurse=false",
        "credential.helper=",  # empty: forget any helper
        "core.symlinks=false",  # a link to /etc/... becomes a file holding its target's path
        "fetch.unpackLimit=1",  # stream the pack to disk (measured) instead of into memory
        "init.defaultBranch=main",
        "advice.detachedHead=false",
    ]
    return [arg for item in config for arg in ("-c", item)]


def _environment(home: Path, settings: CheckoutSettings) -> dict[str, str]:
    ssh = ["ssh", "-o", "BatchMode=yes"]
    if settings.ssh_key_file is not None:
        ssh += ["-i", str(settings.ssh_key_file), "-o", "IdentitiesOnly=yes"]
    if settings.ssh_known_hosts_file is not None:
        ssh += ["-o", f"UserKnownHostsFile={settings.ssh_known_hosts_file}"]
        ssh += ["-o", "StrictHostKeyChecking=yes"]
    else:
        ssh += ["-o", "StrictHostKeyChecking=accept-new"]
    env = {name: os.environ[name] for name in PROXY_VARIABLES if name in os.environ}
    return env | {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "LC_ALL": "C",  # git's messages in English: they become the run's error
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_SSH_COMMAND": shlex.join(ssh),
    }


async def _tail(stream: asyncio.StreamReader) -> bytes:
    """Read a stream to its end, keeping its last bytes."""
    kept = b""
    while chunk := await stream.read(65536):
        kept = (kept + chunk)[-4 * STDERR_TAIL :]
    return kept


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _disk_usage(root: Path) -> int:
    """Bytes in the regular files under ``root``; files vanishing meanwhile are skipped."""
    total = 0
    pending = [str(root)]
    while pending:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    with contextlib.suppress(FileNotFoundError):
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_size
    return total


def _empty(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
