"""Build the job images locally, as no registry is reachable (``make images``).

- ``localhost/controlroom-shell:1``: a static busybox and its applets (about 2 MB, 0.1 s);
- ``localhost/controlroom-python:1``: Debian bookworm ``minbase`` with python3, by debootstrap
  from the mirror apt already uses (about 120 MB, under a minute).

Both have a world-writable sticky ``/tmp`` and an empty ``/workspace``. An image the engine
already holds is left alone, so running this again does nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SHELL_IMAGE = "localhost/controlroom-shell:1"
PYTHON_IMAGE = "localhost/controlroom-python:1"
SUITE = "bookworm"
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/workspace:/bin/sh\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


@dataclass(frozen=True)
class Builder:
    """The engine's CLI (``podman`` or ``docker``) and the environment it needs."""

    cli: str = "podman"
    env: dict[str, str] | None = None

    def has(self, image: str) -> bool:
        done = subprocess.run(
            [self.cli, "image", "inspect", image],
            capture_output=True,
            env=self._env(),
            check=False,
        )
        return done.returncode == 0

    def import_rootfs(self, root: Path, image: str, cmd: str) -> None:
        """``tar`` the tree into ``<cli> import`` (numeric owners, so uid 0 stays 0)."""
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE
        )
        try:
            imported = subprocess.run(
                [
                    self.cli,
                    "import",
                    "--change",
                    f"CMD {cmd}",
                    "--change",
                    "WORKDIR /workspace",
                    "-",
                    image,
                ],
                stdin=tar.stdout,
                capture_output=True,  # its progress lines; shown only when it fails
                env=self._env(),
                check=False,
            )
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            if tar.wait() != 0:
                raise RuntimeError(f"tar of {root} failed with exit code {tar.returncode}")
        if imported.returncode != 0:
            raise RuntimeError(f"{self.cli} import {image} failed: {imported.stderr.decode()}")

    def _env(self) -> dict[str, str] | None:
        return {**os.environ, **self.env} if self.env else None


def shell_rootfs(root: Path) -> None:
    """A static busybox with a symbolic link per applet, ``/tmp`` and ``/workspace``."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("busybox is not installed (Debian: apt-get install busybox-static)")
    for name in ("bin", "etc", "proc", "sys", "dev", "tmp", "workspace"):
        (root / name).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    applets = subprocess.run(
        [str(root / "bin" / "busybox"), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":  # the list names busybox itself
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    _finish(root)


def python_rootfs(root: Path) -> None:
    """Debian ``minbase`` with python3, from the mirror apt already uses."""
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (Debian: apt-get install debootstrap)")
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3-minimal,python3",
            SUITE,
            str(root),
            debian_mirror(),
        ],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (root / leftover).glob("*"):
            if path.is_file():
                path.unlink()
    for docs in ("usr/share/doc", "usr/share/man", "usr/share/locale"):
        shutil.rmtree(root / docs, ignore_errors=True)
    _finish(root)


def debian_mirror() -> str:
    """The first ``URIs:`` of apt's deb822 sources (the mirror this machine reaches)."""
    if DEBIAN_SOURCES.exists():
        for line in DEBIAN_SOURCES.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return DEFAULT_MIRROR


def _finish(root: Path) -> None:
    (root / "tmp").mkdir(exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "workspace").mkdir(exist_ok=True)
    (root / "workspace").chmod(0o755)


RECIPES: dict[str, tuple[Callable[[Path], None], str]] = {
    SHELL_IMAGE: (shell_rootfs, '["/bin/sh"]'),
    PYTHON_IMAGE: (python_rootfs, '["/usr/bin/python3"]'),
}


def ensure_images(
    builder: Builder, images: tuple[str, ...] = (SHELL_IMAGE, PYTHON_IMAGE)
) -> dict[str, float | None]:
    """Build each image the engine lacks; returns image -> seconds the build took (None: it was
    already there). Prints one line per image."""
    took: dict[str, float | None] = {}
    for image in images:
        if builder.has(image):
            print(f"{image}: present, left as it is")
            took[image] = None
            continue
        recipe, cmd = RECIPES[image]
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="controlroom-image-") as scratch:
            root = Path(scratch) / "rootfs"
            root.mkdir()
            recipe(root)
            builder.import_rootfs(root, image, cmd)
        took[image] = time.monotonic() - started
        print(f"{image}: built in {took[image]:.1f}s")
    return took


def main() -> int:
    cli = "podman" if shutil.which("podman") else "docker" if shutil.which("docker") else None
    if cli is None:
        print("neither podman nor docker is installed: no images built", file=sys.stderr)
        return 1
    ensure_images(Builder(cli))
    return 0


if __name__ == "__main__":
    sys.exit(main())
