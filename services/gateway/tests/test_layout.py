"""The package's layout holds: every module imports on its own (no import cycle that shows only
when a module is imported first), and the use cases stay free of the web framework, so that the
REST routers, the UI's endpoints and the MCP server can all call them."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import controlroom_gateway

PACKAGE = Path(controlroom_gateway.__file__).parent

WEB_FRAMEWORKS = ("fastapi", "starlette", "sse_starlette")
USE_CASES = ("jobs", "runs", "templates", "read_model", "lineage", "webhooks")
"""Packages of use cases and the read model: no web framework, no ``api``."""
FRAMEWORK_FREE = ("gateway.py", "errors.py")
"""Top-level modules that must not need the web framework either."""

IMPORT_EACH = """
import importlib, json, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    # Forget every module of the package: each is imported first, as if on its own.
    for loaded in [m for m in sys.modules if m.split(".")[0] == "controlroom_gateway"]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
"""


def _modules() -> list[str]:
    """Every module of the package (migration scripts are Alembic's, not importable)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "migrations":
            continue
        parts = ["controlroom_gateway", *relative.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports, wherever in the file (absolute names)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _offences(path: Path) -> list[str]:
    """The imports of ``path`` that a use case must not make."""
    return sorted(
        name
        for name in _imported(path)
        if name.split(".")[0] in WEB_FRAMEWORKS or name.startswith("controlroom_gateway.api")
    )


def _framework_free() -> list[Path]:
    paths = [PACKAGE / name for name in FRAMEWORK_FREE]
    for package in USE_CASES:
        paths += sorted((PACKAGE / package).rglob("*.py"))
    return paths


def test_every_module_imports_on_its_own() -> None:
    modules = _modules()
    assert "controlroom_gateway.jobs.submit" in modules
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, json.dumps(modules)],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    assert json.loads(result.stdout.splitlines()[-1]) == {}


def test_use_cases_import_no_web_framework_and_no_api_module() -> None:
    checked = _framework_free()
    assert len(checked) > 30  # every package of use cases was found
    offences = {
        str(path.relative_to(PACKAGE)): found for path in checked if (found := _offences(path))
    }
    assert offences == {}


def test_the_layout_check_sees_a_router_importing_fastapi() -> None:
    """The check above would fail for a module that imports the framework."""
    assert "fastapi" in _offences(PACKAGE / "api" / "jobs.py")
    assert any(name.startswith("controlroom_gateway.api") for name in _offences(PACKAGE / "app.py"))
