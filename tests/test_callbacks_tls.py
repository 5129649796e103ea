"""Callbacks over https: certificate checks and SNI for the original name, connecting to the pinned address."""

import asyncio
import ssl
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from api.callbacks import (
    Target,
    post_callback,
)
from tests.callbacks_helpers import BODY

# --- https: certificate validation and SNI for the original name, connection to the pinned IP -------


def make_certificates(tmp_path, name: str):
    """A throwaway CA and a server certificate for `name`; returns (ca_file, cert_file, key_file)."""
    now = datetime.now(UTC)

    def build(subject, issuer, public_key, signing_key, *, ca: bool, issuer_key):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                              content_commitment=False, key_encipherment=False, data_encipherment=False,
                              key_agreement=False, encipher_only=False, decipher_only=False),
                critical=True,
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cheqpoint test CA")])
    ca = build(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True, issuer_key=ca_key.public_key())
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), ca_name, key.public_key(),
                 ca_key, ca=False, issuer_key=ca_key.public_key())

    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_file, cert_file, key_file


@pytest.fixture
async def tls_receiver(tmp_path):
    """A minimal HTTPS server on 127.0.0.1 holding a certificate for callbacks.test only.

    Yields (port, ca_file, seen, answers): `seen` collects {"sni": …, "host": …, "body": …} per
    request; `answers` holds status lines to give before falling back to 204.
    """
    ca_file, cert_file, key_file = make_certificates(tmp_path, "callbacks.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    names: list[str | None] = []
    server_context.sni_callback = lambda _sock, server_name, _ctx: names.append(server_name)
    seen: list[dict] = []
    answers: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Keeps the connection open between requests unless the client asks to close it, as real
        # servers do, so a client that reused connections across host names would be caught.
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                seen.append({"sni": names[-1] if names else None, "host": headers.get("host"), "body": body})
                status = answers.pop(0) if answers else b"204 No Content"
                content = b"" if status.startswith(b"2") else b"busy"
                writer.write(b"HTTP/1.1 %s\r\ncontent-length: %d\r\n\r\n%s" % (status, len(content), content))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, ca_file, seen, answers
    finally:
        server.close()


async def test_https_keeps_sni_and_certificate_checks_for_the_original_name(tls_receiver):
    port, ca_file, seen, _ = tls_receiver
    trust = ssl.create_default_context(cafile=str(ca_file))
    target = Target(url=f"https://callbacks.test:{port}/hook", scheme="https", host="callbacks.test",
                    port=port, addresses=["127.0.0.1"])

    async with httpx.AsyncClient(verify=trust) as client:
        result = await post_callback(client, target, BODY, {"webhook-id": "msg_1"})

    assert result.ok, result.error
    assert seen == [{"sni": "callbacks.test", "host": f"callbacks.test:{port}", "body": BODY}]


async def test_https_refuses_a_certificate_for_another_name_even_on_a_warm_client(tls_receiver):
    port, ca_file, seen, answers = tls_receiver
    answers.append(b"503 Service Unavailable")  # an error body is read to the end: the connection is idle
    trust = ssl.create_default_context(cafile=str(ca_file))
    good = Target(url=f"https://callbacks.test:{port}/hook", scheme="https", host="callbacks.test",
                  port=port, addresses=["127.0.0.1"])
    other = Target(url=f"https://other.test:{port}/hook", scheme="https", host="other.test",
                   port=port, addresses=["127.0.0.1"])

    async with httpx.AsyncClient(verify=trust) as client:
        # Same IP and port: a pooled connection verified for callbacks.test must not carry other.test.
        assert (await post_callback(client, good, BODY, {"webhook-id": "msg_1"})).error == "HTTP 503: busy"
        result = await post_callback(client, other, BODY, {"webhook-id": "msg_2"})

    assert (result.ok, result.status_code) == (False, None)
    assert result.error.startswith("could not connect: ")
    assert "certificate is not valid for 'other.test'" in result.error
    assert [request["host"] for request in seen] == [f"callbacks.test:{port}"]
