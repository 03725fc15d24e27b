"""TLS to the database as POSTGRES_SSL_MODE says (through a TLS front made here, since the embedded
PostgreSQL is built without TLS), and the migrations' lock timeout, against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from app.core.db import connection_options
from devstack.postgres import LocalPostgres


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(folder: Path, name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")


class TlsFront:
    """Aurora's TLS, played on loopback: PostgreSQL's SSLRequest answered 'S', then TLS with a certificate
    for 127.0.0.1, and the session relayed to the session's PostgreSQL (whose build has no TLS).
    `sessions` records, per client, whether it spoke TLS."""

    def __init__(self, upstream_port: int, context: ssl.SSLContext) -> None:
        self.upstream_port = upstream_port
        self.context = context
        self.sessions: list[bool] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(8)
            if first == SSL_REQUEST:
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(self.context)
                first = b""
            self.sessions.append(first == b"")
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            up_writer.write(first)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def tls_front(
    postgres_server: LocalPostgres, tmp_path: Path
) -> AsyncIterator[tuple[TlsFront, int, Path]]:
    """(the front, its port, a folder with `test-ca.pem` that signed its certificate and `other-ca.pem`)."""
    ca_key, ca_cert = make_ca(tmp_path, "test-ca")
    make_ca(tmp_path, "other-ca")
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (tmp_path / "server.crt").write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.key").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    front = TlsFront(postgres_server.port, context)
    port = await front.start()
    yield front, port, tmp_path
    await front.stop()


async def answers(url: str, **tls: str) -> int:
    """Connect through the app's connection options and run a query."""
    settings = Settings(APP_ENV="local", DATABASE_URL=url, **tls)  # type: ignore[arg-type]
    options = connection_options(settings, application_name="tls-test", statement_timeout_ms=None)
    engine = create_async_engine(url, **options)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text("SELECT 1"))).scalar_one())
    finally:
        await engine.dispose()


def through(postgres_server: LocalPostgres, port: int) -> str:
    return postgres_server.url().replace(f":{postgres_server.port}/", f":{port}/")


async def test_verify_full_connects_over_tls_to_a_server_its_ca_vouches_for(
    postgres_server: LocalPostgres, tls_front: tuple[TlsFront, int, Path]
) -> None:
    front, port, certs = tls_front
    url = through(postgres_server, port)
    trusted = {"POSTGRES_SSL_MODE": "verify-full", "POSTGRES_SSL_ROOT_CERT": str(certs / "test-ca.pem")}
    assert await answers(url, **trusted) == 1
    assert await answers(url, POSTGRES_SSL_MODE="disable") == 1
    assert front.sessions == [True, False]


async def test_verify_full_refuses_a_server_another_ca_vouches_for(
    postgres_server: LocalPostgres, tls_front: tuple[TlsFront, int, Path]
) -> None:
    """What a man in the middle (or a misconfigured endpoint) looks like: TLS, but not RDS's certificate."""
    front, port, certs = tls_front
    url = through(postgres_server, port)
    untrusted = {"POSTGRES_SSL_MODE": "verify-full", "POSTGRES_SSL_ROOT_CERT": str(certs / "other-ca.pem")}
    with pytest.raises(Exception, match=r"certificate verify failed|CERTIFICATE_VERIFY_FAILED"):
        await answers(url, **untrusted)
    # "require" encrypts without checking who answers: the weaker mode the stacks do not use.
    assert await answers(url, POSTGRES_SSL_MODE="require") == 1
    assert front.sessions == [True]  # the refused handshake never reached the database


def test_verify_full_without_a_bundle_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="POSTGRES_SSL_ROOT_CERT"):
        Settings(APP_ENV="local", POSTGRES_SSL_MODE="verify-full")


async def test_migrations_give_up_on_a_lock_instead_of_queueing_traffic(database_url: str) -> None:
    """An ALTER behind a long transaction would hold every later query of that table behind itself; with
    the migrations' lock timeout it fails fast and the queries go on."""
    settings = Settings(APP_ENV="local", DATABASE_URL=database_url, MIGRATION_LOCK_TIMEOUT_MS=300)
    plain = database_url.replace("postgresql+asyncpg", "postgresql")
    holder = await asyncpg.connect(plain)
    try:
        await holder.execute("CREATE TABLE IF NOT EXISTS lock_probe (id int)")
        await holder.execute("BEGIN")
        await holder.execute("SELECT * FROM lock_probe")  # a long-running reader holds ACCESS SHARE
        options = connection_options(
            settings,
            application_name="yoctogram-migrate",
            statement_timeout_ms=None,
            lock_timeout_ms=settings.MIGRATION_LOCK_TIMEOUT_MS,
        )
        engine = create_async_engine(database_url, **options)
        try:
            async with engine.connect() as migration:
                assert (await migration.execute(text("SHOW lock_timeout"))).scalar_one() == "300ms"
                started = asyncio.get_running_loop().time()
                with pytest.raises(Exception, match="lock timeout"):
                    await migration.execute(text("ALTER TABLE lock_probe ADD COLUMN extra int"))
                assert asyncio.get_running_loop().time() - started < 5
        finally:
            await engine.dispose()
        await holder.execute("ROLLBACK")
    finally:
        await holder.execute("DROP TABLE IF EXISTS lock_probe")
        await holder.close()


def test_the_migration_environment_sets_the_lock_timeout() -> None:
    env = (Path(__file__).resolve().parents[1] / "alembic" / "env.py").read_text()
    assert "lock_timeout_ms=settings.MIGRATION_LOCK_TIMEOUT_MS" in env
