"""The SSRF guard: which addresses pass, early URL checks, and refusal at connect time."""

from __future__ import annotations

import datetime
import re
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ImproperlyConfigured
from pytest_httpserver import HTTPServer

from ingestion.http import DestinationRefused, FetchError, HttpClient, address_permitted, url_validate
from ingestion.http.guard import networks_parse


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",  # noqa: S104 -- an address to refuse, not one to bind
        "0.1.2.3",
        "100.64.0.1",  # carrier-grade NAT
        "100.127.255.254",
        "224.0.0.1",  # multicast
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",  # documentation
        "198.18.0.1",
        "::",
        "::1",
        "fe80::1",
        "fe80::1%1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",  # site-local
        "ff02::1",  # multicast
        "2001:db8::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:a00:1::1",  # 6to4 carrying 10.0.0.1
        "2002:7f00:1::1",  # 6to4 carrying 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 carrying 169.254.169.254
        "64:ff9b:1::1",  # local-use NAT64
    ],
)
def test_it_refuses_internal_and_special_addresses(ip: str) -> None:
    assert address_permitted(ip, []) is False


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "2001:4860::8888",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "2002:808:808::1",
    ],
)
def test_it_permits_global_unicast_addresses(ip: str) -> None:
    assert address_permitted(ip, []) is True


def test_an_allowed_network_lets_its_addresses_through() -> None:
    allowed = ["10.20.0.0/16", "::1/128"]
    assert address_permitted("10.20.3.4", allowed)
    assert address_permitted("::ffff:10.20.3.4", allowed)  # judged as the IPv4 address it maps
    assert address_permitted("::1", allowed)
    assert not address_permitted("10.21.0.1", allowed)
    assert not address_permitted("127.0.0.1", allowed)


def test_a_bad_allowed_network_is_a_configuration_error() -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape("'10.0.0.0/33'")):
        networks_parse(["10.0.0.0/33"])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/data.json", "Only http:// and https:// URLs can be fetched, not ftp://."),
        ("file:///etc/passwd", "Only http:// and https:// URLs can be fetched, not file://."),
        ("example.com/data", "Only http:// and https:// URLs can be fetched, not a URL without a scheme."),
        ("http:///data.json", "The URL has no host name."),
        ("https://user:pass@example.com/", "Put credentials in the source's authentication settings, not in the URL."),
        ("https://token@example.com/", "Put credentials in the source's authentication settings, not in the URL."),
        ("http://example.com:99999/", "Enter a valid URL."),
    ],
)
def test_url_validate_explains_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        url_validate(url, [])
    assert str(excinfo.value) == message


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://[::1]:8000/", "https://169.254.169.254/latest/meta-data"])
def test_url_validate_refuses_internal_literal_addresses(url: str) -> None:
    with pytest.raises(ValueError, match="is not an allowed destination"):
        url_validate(url, [])


def test_url_validate_accepts_public_urls_and_leaves_names_to_connect_time() -> None:
    url_validate("https://api.example.com/v1/items?page=1", [])
    url_validate("http://8.8.8.8/", [])
    url_validate("http://localhost:8000/", [])  # a name: checked once resolved, when connecting


def test_url_validate_reads_allowed_networks_from_settings(settings: Any) -> None:
    url_validate("http://127.0.0.1:8000/")  # the test settings allow loopback
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}
    with pytest.raises(ValueError, match=re.escape("127.0.0.1 is not an allowed destination")):
        url_validate("http://127.0.0.1:8000/")


def test_a_loopback_address_is_refused_before_connecting(
    httpserver: HTTPServer, no_private_networks: None, connections: list[Any]
) -> None:
    httpserver.expect_request("/data").respond_with_json([])
    with HttpClient() as client, pytest.raises(DestinationRefused) as excinfo:
        client.request_json("GET", f"http://127.0.0.1:{httpserver.port}/data")
    assert str(excinfo.value) == (
        "127.0.0.1 is not an allowed destination (private, loopback, link-local or reserved address); "
        "allow its network with SOURCE_ALLOWED_NETWORKS"
    )
    assert connections == []
    assert httpserver.log == []


def test_a_name_that_resolves_to_loopback_is_refused(
    httpserver: HTTPServer, no_private_networks: None, connections: list[Any]
) -> None:
    httpserver.expect_request("/data").respond_with_json([])
    with HttpClient() as client, pytest.raises(DestinationRefused) as excinfo:
        client.request_json("GET", httpserver.url_for("/data"))
    assert str(excinfo.value).startswith("localhost is not an allowed destination (")
    assert connections == []
    assert httpserver.log == []


def test_a_listed_network_is_reachable(httpserver: HTTPServer, settings: Any) -> None:
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": ["127.0.0.0/8"]}
    httpserver.expect_request("/data").respond_with_json([{"id": 1}])
    with HttpClient() as client:
        assert client.request_json("GET", f"http://127.0.0.1:{httpserver.port}/data").data == [{"id": "1"}]


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/admin"])
def test_a_redirect_into_the_private_network_is_refused_without_connecting(
    httpserver: HTTPServer, connections: list[Any], target: str
) -> None:
    httpserver.expect_request("/data").respond_with_data("", status=302, headers={"Location": target})
    with HttpClient() as client, pytest.raises(DestinationRefused, match="is not an allowed destination"):
        client.request_json("GET", httpserver.url_for("/data"))
    host = target.split("/")[2]
    assert host not in connections
    assert connections == ["127.0.0.1"]  # only the first hop, to the allowed test server


def test_a_webhook_to_a_refused_address_fails_cleanly(no_private_networks: None, connections: list[Any]) -> None:
    with HttpClient() as client, pytest.raises(DestinationRefused):
        client.post_json("http://127.0.0.1:9/hook", {"event": "run.failed"}, timeout=1)
    assert connections == []


def test_a_webhook_returns_the_status_without_following_redirects(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook", method="POST", json={"event": "run.failed"}).respond_with_data(
        "", status=302, headers={"Location": "http://10.0.0.1/"}
    )
    with HttpClient() as client:
        assert client.post_json(httpserver.url_for("/hook"), {"event": "run.failed"}, timeout=1) == 302
    assert len(httpserver.log) == 1


def test_a_webhook_to_a_closed_port_says_only_that_it_could_not_connect(httpserver: HTTPServer) -> None:
    port = httpserver.port
    httpserver.stop()
    try:
        with HttpClient() as client, pytest.raises(FetchError) as excinfo:
            client.post_json(f"http://127.0.0.1:{port}/hook", {}, timeout=1)
    finally:
        httpserver.start()
    assert str(excinfo.value) == "could not connect to 127.0.0.1"


# --- TLS still checks the certificate against the name, though the socket goes to an address


def _certificate(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, Path]:
    """A CA and a server certificate for ``name``: the server's context and the CA file."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "server.pem").write_bytes(cert.public_bytes(pem))
    (tmp_path / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    return context, tmp_path / "ca.pem"


@pytest.mark.parametrize(("cert_name", "verified"), [("localhost", True), ("api.example.com", False)])
def test_https_verifies_the_certificate_against_the_host_name(tmp_path: Path, cert_name: str, verified: bool) -> None:
    context, ca_file = _certificate(tmp_path, cert_name)
    server = HTTPServer(host="localhost", port=0, ssl_context=context)
    server.expect_request("/data").respond_with_json({"ok": True})
    server.start()
    try:
        with HttpClient() as client:
            client.session.verify = str(ca_file)
            url = f"https://localhost:{server.port}/data"
            if verified:
                assert client.request_json("GET", url).data == {"ok": True}
            else:
                with pytest.raises(FetchError, match=r"^could not make a secure connection to localhost \("):
                    client.request_json("GET", url)
    finally:
        server.stop()
