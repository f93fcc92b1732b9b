"""httpx, without its command line.

httpx imports its own command line (``httpx._main``: click, Rich's syntax highlighting,
pygments) whenever click is installed: about a fifth of this CLI's start-up, for code it never
calls. A stand-in module in its place keeps that import from happening; the rest of httpx is
the real thing."""

from __future__ import annotations

import sys
import types


def _no_httpx_cli() -> None:
    raise SystemExit("the httpx command line is not loaded inside controlroom")


if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
    _stand_in = types.ModuleType("httpx._main", "not loaded by controlroom-cli")
    _stand_in.main = _no_httpx_cli  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = _stand_in

import httpx as httpx  # noqa: E402 - after the stand-in, which is the point
