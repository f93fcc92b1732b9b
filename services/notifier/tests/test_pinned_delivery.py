"""A delivery connects to the address the callback policy vetted, never to a second DNS answer,
and keeps the URL's host name for the Host header and for TLS (SNI and certificate check).

``.test`` names never resolve through the system's DNS (RFC 6761): a request that reaches a
receiver under such a name can only have gone to the address the policy's resolver gave.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from controlroom_contracts import subjects
from controlroom_contracts.api import Callbacks, CodeBundle, CodeFile, JobRequest, JobSpec
from controlroom_contracts.base import utc_now
from controlroom_contracts.events import JobSubmitted, RunCompleted
from controlroom_devstack.infra import free_port
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.tap import EventTap
from controlroom_notifier.app import create_app
from controlroom_notifier.settings import NotifierSettings
from controlroom_notifier.webhook_http import post_pinned, webhook_client
from controlroom_runtime.callback_policy import CallbackPolicy, IPAddress, Vetted

NAME = "hooks.rebind.test"
LOOPBACK = ipaddress.ip_address("127.0.0.1")


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    server = CallbackReceiver()
    await server.start()
    yield server
    await server.stop()


async def test_the_request_goes_to_the_vetted_address_under_the_urls_host_name(
    nats_url: str, database_url: str, event_tap: EventTap, receiver: CallbackReceiver
) -> None:
    looked_up: list[str] = []

    async def resolver(host: str) -> list[IPAddress]:
        looked_up.append(host)
        return [LOOPBACK]

    settings = NotifierSettings(
        callback_allowlist=["127.0.0.0/8"],
        nats_url=nats_url,
        database_url=database_url,
        delivery_poll_interval_seconds=0.2,
    )
    policy = CallbackPolicy(settings.callback_allowlist, resolver=resolver)
    url = f"http://{NAME}:{receiver.port}/pinned"
    async with running(create_app(settings, policy=policy)):
        submitted = JobSubmitted(
            tenant_id="t1",
            run_id=uuid4(),
            job=JobRequest(
                job_type="diagram_export",
                spec=JobSpec(text="x"),
                code=CodeBundle(files=[CodeFile(path="a.py", content="")]),
                created_by="test",
                callbacks=Callbacks.model_validate({"on_complete": url}),
            ),
        )
        done = RunCompleted(
            tenant_id="t1", run_id=submitted.run_id, attempt=1, summary="ok", finished_at=utc_now()
        )
        await event_tap.publish(submitted.subject, submitted.model_dump_json().encode())
        await event_tap.publish(done.subject, done.model_dump_json().encode())
        got = await receiver.wait_for(lambda r: r.path == "/pinned")
        assert got.headers["host"] == f"{NAME}:{receiver.port}"
        await event_tap.wait_for(
            subjects.WEBHOOK_DELIVERED, lambda d: d["run_id"] == str(submitted.run_id)
        )
        assert looked_up == [NAME]  # resolved once, by the policy


async def test_the_next_vetted_address_is_tried_when_one_refuses_connections(
    receiver: CallbackReceiver,
) -> None:
    nobody = ipaddress.ip_address("127.0.0.2")  # loopback too, but the receiver is not there
    target = Vetted(f"http://{NAME}:{receiver.port}/second", NAME, (nobody, LOOPBACK))
    loop = asyncio.get_running_loop()
    async with webhook_client(NotifierSettings()) as http:
        answer = await post_pinned(
            http, target, "{}", {}, max_response_bytes=1024, deadline=loop.time() + 10
        )
        assert answer.status == 204
        only_nobody = Vetted(target.url, NAME, (nobody,))
        with pytest.raises(httpx.ConnectError):
            await post_pinned(
                http, only_nobody, "{}", {}, max_response_bytes=1024, deadline=loop.time() + 10
            )
    assert [r.headers["host"] for r in receiver.received] == [f"{NAME}:{receiver.port}"]


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for NAME only (no IP address in it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_tls_names_and_verifies_the_urls_host_while_connecting_to_the_vetted_address(
    tmp_path: Path,
) -> None:
    cert_file, key_file = _certificate(tmp_path)
    server_names: list[str | None] = []
    hosts: list[bytes] = []
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    server_tls.sni_callback = lambda _sock, name, _ctx: server_names.append(name)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        hosts.extend(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"host:")
        )
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port, ssl=server_tls)
    client_tls = ssl.create_default_context(cafile=str(cert_file))
    loop = asyncio.get_running_loop()
    try:
        async with webhook_client(NotifierSettings(), verify=client_tls) as http:
            target = Vetted(f"https://{NAME}:{port}/hook", NAME, (LOOPBACK,))
            answer = await post_pinned(
                http, target, "{}", {}, max_response_bytes=1024, deadline=loop.time() + 10
            )
            assert answer.status == 204
            assert server_names == [NAME] and hosts == [f"{NAME}:{port}".encode()]

            # The certificate is checked against the URL's name, so one for another name fails.
            other = Vetted(
                f"https://other.rebind.test:{port}/hook", "other.rebind.test", (LOOPBACK,)
            )
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await post_pinned(
                    http, other, "{}", {}, max_response_bytes=1024, deadline=loop.time() + 10
                )
    finally:
        server.close()
