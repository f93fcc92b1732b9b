"""The local-process backend, at the backend's level, with ordinary and hostile jobs.

Each hostile job runs in every containment mode this machine offers: inside bubblewrap and
without it, each with the attempt's cgroup v2 and with processes tracked in /proc instead.
Jobs are Python scripts run by the system interpreter (``python3`` on the job's PATH).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import pwd
import resource
import shutil
import signal
import socket
import stat
import tempfile
import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from controlroom_contracts.api import CodeBundle, CodeFile
from controlroom_contracts.routing import ExecutionProfile, Network
from controlroom_devstack.waiting import eventually
from controlroom_executor.backend import AttemptKey, AttemptSpec, Exit, RunningAttempt
from controlroom_executor.cgroup_tree import own_cgroup
from controlroom_executor.job_user import restrict_directories
from controlroom_executor.local_backend import LocalProcessBackend, ensure_job_user

AS_ROOT = os.geteuid() == 0
HAS_BWRAP = shutil.which("bwrap") is not None
JOB_PATH = "/usr/bin:/bin"
BOUND = 60.0
"""The deadline of anything a test waits for."""
EXECUTOR_ID = f"local-test-{os.getpid()}"
"""Its own per test run: the suite may run in several processes on this host at once."""

needs_root = pytest.mark.skipif(not AS_ROOT, reason="jobs get a user of their own only as root")


def _cgroups_writable() -> bool:
    parent = own_cgroup()
    if parent is None or not os.access(parent, os.W_OK):
        return False
    probe = parent / f"controlroom-test-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return False
    return True


HAS_CGROUPS = _cgroups_writable()
no_bwrap = pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap (bwrap) is not installed")
no_cgroups = pytest.mark.skipif(not HAS_CGROUPS, reason="no writable cgroup v2 here")


@dataclass(frozen=True)
class Mode:
    bwrap: bool
    cgroups: bool


MODES = [
    pytest.param(Mode(bwrap=True, cgroups=True), id="bwrap-cgroup", marks=[no_bwrap, no_cgroups]),
    pytest.param(Mode(bwrap=True, cgroups=False), id="bwrap-tracked", marks=no_bwrap),
    pytest.param(Mode(bwrap=False, cgroups=True), id="plain-cgroup", marks=no_cgroups),
    pytest.param(Mode(bwrap=False, cgroups=False), id="plain-tracked"),
]
WITH_AND_WITHOUT_BWRAP = [MODES[0], MODES[2]] if HAS_CGROUPS else [MODES[1], MODES[3]]


@pytest.fixture(scope="session")
def job_user() -> tuple[int, int]:
    return ensure_job_user()


@pytest.fixture(scope="session")
def work_root() -> Iterator[Path]:
    """Where workspaces live: passable (0711) by the job user, listable by nobody else."""
    path = Path(tempfile.mkdtemp(prefix="cr-local-backend-"))
    restrict_directories(traversable=[path])
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> Mode:
    mode: Mode = request.param
    return mode


@pytest.fixture
async def backend(mode: Mode, job_user: tuple[int, int]) -> AsyncIterator[LocalProcessBackend]:
    backend = LocalProcessBackend(
        job_user=job_user if AS_ROOT else None,
        kill_grace_seconds=1.0,
        use_bwrap=mode.bwrap,
        use_cgroups=mode.cgroups,
    )
    yield backend
    await backend.close()


def make_spec(
    work_root: Path,
    code: str,
    *args: str,
    timeout_seconds: int = 60,
    env: dict[str, str] | None = None,
    network: Network = "none",
    **limits: int,
) -> AttemptSpec:
    """An attempt of ``python3 main.py *args`` with ``code`` as main.py in a new workspace."""
    workspace = work_root / uuid.uuid4().hex / "workspace"
    workspace.mkdir(parents=True)
    workspace.parent.chmod(0o711)
    source = textwrap.dedent(code)
    (workspace / "main.py").write_text(source)
    return AttemptSpec(
        key=AttemptKey(uuid.uuid4(), 1),
        tenant_id="t1",
        job_type="local-test",
        executor_id=EXECUTOR_ID,
        code=CodeBundle(files=[CodeFile(path="main.py", content=source)]),
        workspace=workspace,
        command=["python3", "main.py", *args],
        env={"PATH": JOB_PATH, **(env or {})},
        profile=ExecutionProfile.model_validate(
            {"image": "none", "commands": {".py": ["python3"]}, "network": network, **limits}
        ),
        timeout_seconds=timeout_seconds,
    )


@dataclass
class Output:
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)

    def text(self) -> str:
        return (self.stdout + self.stderr).decode(errors="replace")


@asynccontextmanager
async def launched(
    backend: LocalProcessBackend, spec: AttemptSpec
) -> AsyncIterator[tuple[RunningAttempt, Output]]:
    """The started attempt with its output being read; removed at the end, whatever happens."""
    attempt = await backend.launch(spec)
    output = Output()

    async def pump() -> None:
        async for stream, chunk in attempt.output():
            getattr(output, stream).extend(chunk)

    pumping = asyncio.create_task(pump())
    try:
        yield attempt, output
        async with asyncio.timeout(BOUND):
            await pumping
    finally:
        pumping.cancel()
        await asyncio.gather(pumping, return_exceptions=True)
        await attempt.remove()


async def run(backend: LocalProcessBackend, spec: AttemptSpec) -> tuple[Exit, Output]:
    async with launched(backend, spec) as (attempt, output):
        async with asyncio.timeout(BOUND):
            exit = await attempt.wait()
    return exit, output


def living_with(marker: str) -> list[int]:
    """Processes (not zombies) whose command line holds ``marker``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state not in (b"Z", b"X"):
            found.append(int(name))
    return found


async def test_a_job_gets_only_its_environment_and_separate_streams(
    backend: LocalProcessBackend, work_root: Path, job_user: tuple[int, int]
) -> None:
    spec = make_spec(
        work_root,
        """
        import json, os, sys
        print(json.dumps({"env": dict(os.environ), "uid": os.getuid()}))
        print("to stderr", file=sys.stderr)
        """,
        env={"CONTROLROOM_INPUT_GREETING": "hello world"},
    )
    exit, output = await run(backend, spec)
    assert exit == Exit(0)
    seen = json.loads(output.stdout)
    # bwrap sets PWD; Python 3.11 coerces the C locale (PEP 538) and says so in LC_CTYPE.
    assert {k: v for k, v in seen["env"].items() if k not in ("PWD", "LC_CTYPE")} == spec.env
    assert output.stderr == b"to stderr\n"
    if AS_ROOT:
        assert seen["uid"] == job_user[0]
        info = spec.workspace.stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (job_user[0], 0o700)


async def test_a_failing_job_reports_its_exit_code(
    backend: LocalProcessBackend, work_root: Path
) -> None:
    exit, output = await run(backend, make_spec(work_root, "raise SystemExit(7)"))
    assert exit == Exit(7)
    assert output.stdout == b""


@pytest.mark.parametrize("on_sigterm", ["dies", "ignores"])
async def test_stop_ends_a_running_job(
    backend: LocalProcessBackend, work_root: Path, on_sigterm: str
) -> None:
    marker = uuid.uuid4().hex
    spec = make_spec(
        work_root,
        """
        import signal, sys, time
        if sys.argv[2] == "ignores":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(3600)
        """,
        marker,
        on_sigterm,
    )
    async with launched(backend, spec) as (attempt, output):
        await eventually(holds(lambda: b"ready" in output.stdout), timeout=BOUND, what="job ready")
        await asyncio.wait_for(attempt.stop(0.5), timeout=BOUND)
        exit = await asyncio.wait_for(attempt.wait(), timeout=BOUND)
        assert living_with(marker) == []
    expected = signal.SIGTERM if on_sigterm == "dies" else signal.SIGKILL
    assert exit.exit_code == -expected


async def test_remove_kills_a_running_job_and_can_be_repeated(
    backend: LocalProcessBackend, work_root: Path
) -> None:
    marker = uuid.uuid4().hex
    spec = make_spec(work_root, "import time; print('ready', flush=True); time.sleep(3600)", marker)
    attempt = await backend.launch(spec)
    await eventually(holds(lambda: bool(living_with(marker))), timeout=BOUND, what="job running")
    await asyncio.wait_for(attempt.remove(), timeout=BOUND)
    assert living_with(marker) == []
    await attempt.remove()
    assert (await attempt.wait()).exit_code == -signal.SIGKILL


@needs_root
async def test_a_job_cannot_read_the_executors_environment(
    backend: LocalProcessBackend, work_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"cr-marker-{uuid.uuid4().hex}"
    monkeypatch.setenv("CONTROLROOM_TEST_MARKER", marker)
    # /proc/<pid>/environ shows a process's environment as it started: these are in it.
    started_with = [e for e in Path("/proc/self/environ").read_bytes().split(b"\0") if len(e) > 8]
    spec = make_spec(
        work_root,
        """
        import os
        for pid in (os.getppid(), 1):
            try:
                print(pid, open(f"/proc/{pid}/environ", "rb").read())
            except OSError as exc:
                print(pid, "refused:", exc)
        """,
    )
    exit, output = await run(backend, spec)
    assert exit == Exit(0), output.text()
    assert marker.encode() not in output.stdout
    given = {f"{k}={v}".encode() for k, v in spec.env.items()}
    leaked = [e for e in started_with if e in output.stdout and e not in given]
    assert leaked == []


@needs_root
async def test_a_job_cannot_leave_its_workspace(
    backend: LocalProcessBackend, work_root: Path
) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    sibling = work_root / f"other-run-{uuid.uuid4().hex}"  # another run's workspace
    sibling.mkdir(mode=0o700)
    (sibling / "notes.txt").write_text(secret)
    data = work_root / f"data-{uuid.uuid4().hex}"  # the executor's data directory
    data.mkdir()
    (data / "store.txt").write_text(secret)
    restrict_directories([data])
    spec = make_spec(
        work_root,
        """
        import json, os, sys
        seen = {}
        for path in sys.argv[1:]:
            try:
                seen[path] = open(path).read() if os.path.isfile(path) else os.listdir(path)
            except OSError as exc:
                seen[path] = f"refused: {exc}"
        print(json.dumps(seen))
        """,
        f"../../{sibling.name}/notes.txt",
        str(sibling / "notes.txt"),
        f"../../{data.name}/store.txt",
        str(data / "store.txt"),
        "../..",
    )
    exit, output = await run(backend, spec)
    assert exit == Exit(0), output.text()
    seen = json.loads(output.stdout)
    assert secret not in output.text()
    listed = seen.pop("../..")
    assert all(str(v).startswith("refused") for v in seen.values()), seen
    assert isinstance(listed, str) or not {sibling.name, data.name} & set(listed), listed


async def test_a_job_cannot_reach_the_hosts_loopback(
    backend: LocalProcessBackend, work_root: Path, mode: Mode
) -> None:
    if not (mode.bwrap or AS_ROOT):
        pytest.skip("a plain local process shares the host's network unless root unshares it")
    # Without bubblewrap, a root executor still gives the job an empty network namespace.
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        spec = make_spec(work_root, CONNECT, str(port))
        exit, output = await run(backend, spec)
    assert exit == Exit(0), output.text()
    assert output.stdout.startswith(b"refused"), output.text()


@pytest.mark.parametrize("mode", WITH_AND_WITHOUT_BWRAP, indirect=True)
async def test_an_egress_job_shares_the_hosts_network(
    backend: LocalProcessBackend, work_root: Path
) -> None:
    """Documents a limit: egress on this backend is the host's network, loopback included."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        spec = make_spec(work_root, CONNECT, str(port), network="egress")
        exit, output = await run(backend, spec)
    assert exit == Exit(0), output.text()
    assert output.stdout.startswith(b"connected"), output.text()


CONNECT = """
    import socket, sys
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).close()
        print("connected")
    except OSError as exc:
        print("refused:", exc)
    """


@needs_root
async def test_a_fork_bomb_ends_within_timeout_and_grace(
    backend: LocalProcessBackend, work_root: Path
) -> None:
    marker = uuid.uuid4().hex
    timeout, grace = 2, 1.0
    spec = make_spec(
        work_root,
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """,
        marker,
        timeout_seconds=timeout,
        pids=64,
    )
    async with launched(backend, spec) as (attempt, _output):
        with pytest.raises(TimeoutError):  # what the runtime's timeout does
            await asyncio.wait_for(attempt.wait(), timeout=timeout)
        assert len(living_with(marker)) >= spec.profile.pids // 2  # it did fork, up to its limit
        await asyncio.wait_for(attempt.stop(grace), timeout=grace + 15)
        assert living_with(marker) == []


@pytest.mark.parametrize("then", ["exits", "is stopped"])
async def test_a_setsid_escapee_does_not_outlive_the_attempt(
    backend: LocalProcessBackend, work_root: Path, then: str
) -> None:
    seconds = f"300.{uuid.uuid4().int % 10**9}"  # a sleep no other process has
    spec = make_spec(
        work_root,
        """
        import os, subprocess, sys, time
        sleeper = subprocess.Popen(["setsid", "sleep", sys.argv[1]])
        deadline = time.monotonic() + 10
        while os.getsid(sleeper.pid) != sleeper.pid and time.monotonic() < deadline:
            time.sleep(0.01)
        print("escaped", sleeper.pid, os.getsid(sleeper.pid) == sleeper.pid, flush=True)
        if sys.argv[2] == "exits":
            os._exit(0)
        time.sleep(3600)
        """,
        seconds,
        then,
    )
    async with launched(backend, spec) as (attempt, output):
        await eventually(holds(lambda: b"escaped" in output.stdout), timeout=BOUND, what="escape")
        assert output.stdout.split()[2] == b"True"
        if then == "is stopped":
            assert living_with(seconds)
            await asyncio.wait_for(attempt.stop(1.0), timeout=BOUND)
        exit = await asyncio.wait_for(attempt.wait(), timeout=BOUND)
    assert living_with(seconds) == []
    if then == "exits":
        assert exit == Exit(0)


@pytest.mark.parametrize("mode", WITH_AND_WITHOUT_BWRAP, indirect=True)
async def test_a_gibibyte_of_stdout_streams_through_in_bounded_memory(
    backend: LocalProcessBackend, work_root: Path
) -> None:
    total = 1 << 30
    spec = make_spec(
        work_root,
        """
        import sys
        block = b"x" * (1 << 20)
        for _ in range(int(sys.argv[1]) >> 20):
            sys.stdout.buffer.write(block)
        """,
        str(total),
        memory=256 << 20,
    )
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    count = 0
    attempt = await backend.launch(spec)
    try:
        async with asyncio.timeout(BOUND):
            async for stream, chunk in attempt.output():
                assert stream == "stdout"
                count += len(chunk)
            exit = await attempt.wait()
    finally:
        await attempt.remove()
    assert (exit, count) == (Exit(0), total)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown < 64 << 10, f"the executor's peak memory grew by {grown} KiB"


@pytest.mark.parametrize("mode", WITH_AND_WITHOUT_BWRAP, indirect=True)
async def test_filling_the_workspace_stops_at_the_file_size_limit(
    backend: LocalProcessBackend, work_root: Path
) -> None:
    limit = 4 << 20
    spec = make_spec(
        work_root,
        """
        import errno
        block = b"x" * (64 << 10)
        try:
            with open("filler", "wb", buffering=0) as f:
                while True:
                    f.write(block)
        except OSError as exc:
            print(errno.errorcode[exc.errno])
        """,
        workspace=limit,
    )
    exit, output = await run(backend, spec)
    assert exit == Exit(0), output.text()
    assert output.stdout.strip() == errno.errorcode[errno.EFBIG].encode()
    assert (spec.workspace / "filler").stat().st_size == limit


@pytest.mark.parametrize("mode", WITH_AND_WITHOUT_BWRAP, indirect=True)
async def test_cpu_time_past_the_timeout_is_reported_as_timeout(
    backend: LocalProcessBackend, work_root: Path
) -> None:
    spec = make_spec(work_root, "while True: pass", timeout_seconds=1)
    exit, _ = await run(backend, spec)
    assert exit.exit_code == -signal.SIGXCPU
    assert exit.failure_reason == "timeout"


@pytest.mark.parametrize("mode", WITH_AND_WITHOUT_BWRAP, indirect=True)
async def test_collect_copies_regular_files_and_no_symlink(
    backend: LocalProcessBackend, work_root: Path, tmp_path: Path
) -> None:
    spec = make_spec(
        work_root,
        """
        import os
        os.makedirs("output/sub")
        open("output/result.txt", "w").write("result")
        open("output/sub/more.txt", "w").write("more")
        os.symlink("/etc/hostname", "output/host-file")
        os.symlink("/etc", "output/host-dir")
        os.mkfifo("output/fifo")
        """,
    )
    attempt_dir = tmp_path / "collected"
    async with launched(backend, spec) as (attempt, output):
        exit = await asyncio.wait_for(attempt.wait(), timeout=BOUND)
        await attempt.collect(attempt_dir)
    assert exit == Exit(0), output.text()
    found = sorted(str(p.relative_to(attempt_dir)) for p in attempt_dir.rglob("*"))
    assert found == ["result.txt", "sub", "sub/more.txt"]
    assert (attempt_dir / "result.txt").read_text() == "result"


@no_cgroups
@needs_root
async def test_adopt_finds_nothing_and_kills_what_a_crashed_executor_left(
    job_user: tuple[int, int],
) -> None:
    parent = own_cgroup()
    assert parent is not None
    crashed = f"crashed-{uuid.uuid4().hex}"
    leftover = parent / f"controlroom-{crashed}" / "cr-leftover-1"
    leftover.mkdir(parents=True)
    marker = f"300.{uuid.uuid4().int % 10**9}"
    sleeper = await asyncio.create_subprocess_exec("sleep", marker)
    try:
        (leftover / "cgroup.procs").write_text(str(sleeper.pid))
        backend = LocalProcessBackend(job_user=job_user)
        assert await backend.adopt(crashed) == {}
        assert await asyncio.wait_for(sleeper.wait(), timeout=BOUND) == -signal.SIGKILL
        assert not leftover.parent.exists()  # the executor's directory went with its last
        await backend.close()
    finally:
        if sleeper.returncode is None:
            sleeper.kill()
            await sleeper.wait()
        for path in (leftover, leftover.parent):
            with contextlib.suppress(OSError):
                path.rmdir()


@needs_root
def test_the_job_user_has_no_shell_and_no_home(job_user: tuple[int, int]) -> None:
    entry = pwd.getpwuid(job_user[0])
    assert entry.pw_name == "controlroom-job"
    assert entry.pw_shell in ("/usr/sbin/nologin", "/bin/false")
    assert not Path(entry.pw_dir).exists()
    assert ensure_job_user() == job_user


def holds(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return check()

    return probe


@needs_root
async def test_many_jobs_at_once_each_get_their_own_process_limit(
    backend: LocalProcessBackend, work_root: Path
) -> None:
    """Every job runs as the same job user: a process limit counted per user (RLIMIT_NPROC)
    made jobs fail to fork, or bubblewrap to make its namespaces, once enough ran at once,
    whatever each did. Each job is bounded on its own: twelve jobs of three processes each,
    with a limit of eight processes per job, all succeed."""
    code = """
        import subprocess
        children = [subprocess.Popen(["sleep", "1"]) for _ in range(2)]
        print(sum(child.wait() == 0 for child in children))
        """
    specs = [make_spec(work_root, code, pids=8) for _ in range(12)]
    attempts = [await backend.launch(spec) for spec in specs]
    try:
        exits = await asyncio.wait_for(
            asyncio.gather(*(attempt.wait() for attempt in attempts)), timeout=BOUND
        )
        assert [exit.exit_code for exit in exits] == [0] * len(specs)
    finally:
        await asyncio.gather(*(attempt.remove() for attempt in attempts))
