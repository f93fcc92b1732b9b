"""Which repository URLs and refs a job may name (pure functions, no pydantic).

The gateway refuses a bad ``repo`` at submission and the executor checks again before it runs
git, with the same rules. Accepted: ``https://host/path``, ``ssh://[user@]host[:port]/path``,
scp-like ``[user@]host:path``; ``http://`` and ``file://`` only when the caller allows them.
Credentials never travel in a URL (they would be stored with the run): they belong in the
executor's configuration.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 2048
MAX_REF_LENGTH = 256

ACCEPTED_FORMS = "https://host/path, ssh://[user@]host/path or [user@]host:path"

_REMOTE_HELPER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+.-]*::")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# git reads "<user>@<host>:<path>" as ssh when a colon comes before any slash
_SCP_LIKE = re.compile(
    r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:\[\]]+|\[[0-9A-Fa-f:.]+\]):(?P<path>.+)$"
)
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$")
_USER = re.compile(r"^[A-Za-z0-9._~-]+$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def _has_control_or_space(value: str) -> bool:
    return any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value)


def validate_repo_url(
    url: str, *, allow_file: bool = False, allow_insecure_http: bool = False
) -> str | None:
    """The reason ``url`` may not be checked out, or None when it may."""
    if not url:
        return "the repository URL is empty"
    if len(url) > MAX_URL_LENGTH:
        return f"the repository URL is longer than {MAX_URL_LENGTH} characters"
    if _has_control_or_space(url):
        return "the repository URL must not contain spaces or control characters"
    if url.startswith("-"):
        return "the repository URL must not start with '-'"
    if _REMOTE_HELPER.match(url):  # "<transport>::<address>" runs a git remote helper
        return f"git remote helpers are not allowed; use {ACCEPTED_FORMS}"
    match = _SCHEME.match(url)
    if match is None:
        return _check_scp_like(url)
    scheme = match.group(1).lower()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "the repository URL is malformed"
    if scheme == "https" or (scheme == "http" and allow_insecure_http):
        return _check_network(parts, user_allowed=False)
    if scheme == "ssh":
        return _check_network(parts, user_allowed=True)
    if scheme == "http":
        return "http:// repository URLs are not allowed (unencrypted); use https://"
    if scheme == "file":
        if not allow_file:
            return "file:// repository URLs are not allowed on this executor"
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            return "a file:// repository URL must be file:///absolute/path"
        return None
    return f"the {scheme}:// scheme is not allowed; use {ACCEPTED_FORMS}"


def _check_network(parts: SplitResult, *, user_allowed: bool) -> str | None:
    if "@" in parts.netloc:
        if parts.password is not None or not user_allowed:
            return (
                "the repository URL must not embed credentials (user:password@ or token@);"
                " configure them on the executor instead"
            )
        if not _USER.match(parts.username or ""):
            return "the user name in the repository URL is malformed"
    host = parts.netloc.rsplit("@", 1)[-1]
    if parts.port is not None:
        host = host.rsplit(":", 1)[0]
    if not _HOST.match(host):
        return "the repository URL has no valid host"
    if parts.path in ("", "/"):
        return "the repository URL has no path"
    return None


def _check_scp_like(url: str) -> str | None:
    match = _SCP_LIKE.match(url)
    if match is None:
        # a local path: reading the executor's own disk is never allowed this way
        return f"not a repository URL; use {ACCEPTED_FORMS}"
    user, host = match.group("user"), match.group("host")
    if user is not None and not _USER.match(user):
        return "the user name in the repository URL is malformed"
    if not _HOST.match(host):
        return "the repository URL has no valid host"
    return None


def validate_repo_ref(ref: str) -> str | None:
    """The reason ``ref`` (a branch, a tag or a 40-hex commit sha) is unusable, or None."""
    if not ref:
        return "the ref is empty"
    if len(ref) > MAX_REF_LENGTH:
        return f"the ref is longer than {MAX_REF_LENGTH} characters"
    if _SHA.match(ref):
        return None
    if ref.startswith(("-", "/", ".")) or ref.endswith(("/", ".", ".lock")):
        return "the ref must not start with '-', '/' or '.', nor end with '/', '.' or '.lock'"
    if _REF_FORBIDDEN.search(ref) or ".." in ref or "//" in ref or "@{" in ref or ref == "@":
        return "the ref is not a valid branch or tag name"
    if any(part.startswith(".") for part in ref.split("/")):
        return "a ref component must not start with '.'"
    return None
