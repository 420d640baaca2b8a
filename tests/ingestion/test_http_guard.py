"""The SSRF guard: which addresses pass, early URL checks, and refusal at connect time."""

from __future__ import annotations

import datetime
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
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
from ingestion.http.guard import _MAX_PENDING_LOOKUPS, URLRefused, ipv4_parse, networks_parse


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


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://10.0.0.1/", "10.0.0.1, a private address"),
        ("http://[::1]:8000/", "::1, a loopback address"),
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254, a link-local address"),
    ],
)
def test_url_validate_refuses_internal_literal_addresses(url: str, address: str) -> None:
    with pytest.raises(URLRefused, match=re.escape(f"{url} points at {address}; sources may only reach public")):
        url_validate(url, [])


def no_such_name(host: str, *args: Any) -> list[Any]:
    """The OS resolver's answer for a name no DNS server knows; no query leaves the machine."""
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def test_url_validate_accepts_public_urls_and_names_that_do_not_resolve_yet(dns_lookups: list[str]) -> None:
    url_validate("http://8.8.8.8/", [])
    url_validate("https://[2001:4860:4860::8888]/", [])
    # Checked once resolved, when connecting.
    url_validate("https://api.example.invalid/v1/items?page=1", [], resolver=no_such_name)

    assert dns_lookups == []


def test_url_validate_reads_allowed_networks_from_settings(settings: Any) -> None:
    url_validate("http://127.0.0.1:8000/")  # the test settings allow loopback
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}
    with pytest.raises(ValueError, match=re.escape("http://127.0.0.1:8000/ points at 127.0.0.1, a loopback address")):
        url_validate("http://127.0.0.1:8000/")


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7F000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("169.254.43518", "169.254.169.254"),
        ("0", "0.0.0.0"),  # noqa: S104 -- a parsed address, nothing binds to it
        ("8.8.8.8", "8.8.8.8"),
    ],
)
def test_legacy_ipv4_spellings_are_read_as_browsers_and_inet_aton_read_them(host: str, address: str) -> None:
    assert str(ipv4_parse(host)) == address


@pytest.mark.parametrize("host", ["example.com", "api.1e2", "0x7f.example", "localhost", "7f.example"])
def test_host_names_are_not_taken_for_ipv4_addresses(host: str) -> None:
    assert ipv4_parse(host) is None


@pytest.mark.parametrize("host", ["256.0.0.1", "1.2.3.4.5", "example.123", "1.2.3.0x100", "08.0.0.1", "1..1"])
def test_a_host_that_ends_like_a_number_but_is_no_address_is_an_error(host: str) -> None:
    with pytest.raises(ValueError, match="neither a host name nor a valid IPv4 address"):
        url_validate(f"http://{host}/", [])


@pytest.mark.parametrize(
    ("url", "points_at"),
    [
        ("http://2130706433/", "points at 127.0.0.1, a loopback address"),
        ("http://0x7f.1/", "points at 127.0.0.1, a loopback address"),
        ("http://127.1/", "points at 127.0.0.1, a loopback address"),
        ("http://0177.0.0.1/", "points at 127.0.0.1, a loopback address"),
        ("http://%31%32%37.0.0.1/", "points at 127.0.0.1, a loopback address"),
        ("http://\uff11\uff12\uff17\uff0e0.0.1/", "points at 127.0.0.1, a loopback address"),
        ("http://localhost/", "resolves to 127.0.0.1, a loopback address"),
        ("http://localhost./", "resolves to 127.0.0.1, a loopback address"),
        ("http://LOCALHOST:8080/", "resolves to 127.0.0.1, a loopback address"),
        ("http://api.localhost/", "resolves to 127.0.0.1, a loopback address"),
        ("http://[::1]/", "points at ::1, a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "points at 127.0.0.1, a loopback address"),
        ("http://[::ffff:a00:1]/", "points at 10.0.0.1, a private address"),
        ("http://0.0.0.0/", "points at 0.0.0.0, an unspecified address (the local host)"),
        ("http://169.254.169.254/", "points at 169.254.169.254, a link-local address"),
        ("http://100.64.0.1/", "points at 100.64.0.1, a shared (carrier-grade NAT) address"),
        ("http://[fd12::1]/", "points at fd12::1, a private address"),
        ("http://224.0.0.1/", "points at 224.0.0.1, a multicast address"),
    ],
)
def test_url_validate_refuses_every_spelling_of_an_internal_address(url: str, points_at: str) -> None:
    with pytest.raises(URLRefused) as excinfo:
        url_validate(url, [], purpose="webhooks")

    assert points_at in str(excinfo.value)
    assert str(excinfo.value).endswith(
        f"{points_at}; webhooks may only reach public addresses unless SOURCE_ALLOWED_NETWORKS allows it"
    )


def test_the_message_names_the_url_as_written_and_the_normalised_address() -> None:
    with pytest.raises(URLRefused) as excinfo:
        url_validate("http://0x7f.1/", [])

    assert str(excinfo.value) == (
        "http://0x7f.1/ points at 127.0.0.1, a loopback address; "
        "sources may only reach public addresses unless SOURCE_ALLOWED_NETWORKS allows it"
    )


@pytest.mark.parametrize(
    "url", ["http://2130706433/", "http://0x7f.1/", "http://localhost./", "http://[::ffff:7f00:1]/"]
)
def test_url_validate_accepts_internal_spellings_that_allowed_networks_cover(url: str) -> None:
    url_validate(url, ["127.0.0.0/8"])


def test_a_name_that_resolves_to_an_internal_address_is_refused_with_that_address(settings: Any) -> None:
    # The one check through the real OS resolver: the machine's own host name, which the
    # system resolves locally (usually /etc/hosts), so no query leaves the machine.
    name = socket.gethostname().lower()
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    except OSError:
        pytest.skip(f"name resolution is unavailable: this machine's host name {name} does not resolve")
    settings.SOURCES = {**settings.SOURCES, "DNS_TIMEOUT": 30.0}  # a slow resolver must not make this fail
    internal = sorted(a for a in resolved if not address_permitted(a, []))
    if not internal:
        pytest.skip(f"{name} resolves to public addresses only")

    with pytest.raises(URLRefused, match=f"^http://{re.escape(name)}/ resolves to "):
        url_validate(f"http://{name}/", [])
    url_validate(f"http://{name}/", [f"{a}/{32 if '.' in a else 128}" for a in resolved])


def test_a_name_that_does_not_resolve_is_accepted_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    url_validate("https://nowhere.example.invalid/feed", [], resolver=no_such_name)

    assert "nowhere.example.invalid/feed does not resolve now; it is checked again when connecting" in caplog.text


@pytest.fixture
def stalled_resolver() -> Iterator[Callable[..., list[Any]]]:
    """A stand-in for the OS resolver behind a DNS server that does not answer (for 30 s)."""
    release = threading.Event()

    def resolve(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    yield resolve
    release.set()
    for thread in threading.enumerate():  # lookups given up on end now; later tests start clean
        if thread.name == "dns-lookup":
            thread.join(5)


def test_a_lookup_that_stalls_is_given_up_after_the_dns_timeout(
    settings: Any, caplog: pytest.LogCaptureFixture, stalled_resolver: Callable[..., list[Any]]
) -> None:
    settings.SOURCES = {**settings.SOURCES, "DNS_TIMEOUT": 0.2}

    started = time.monotonic()
    url_validate("https://slow.example.com/feed", [], resolver=stalled_resolver)
    elapsed = time.monotonic() - started

    assert elapsed < 2
    assert "https://slow.example.com/feed could not be resolved within 0.2 s; it is checked again when connecting" in (
        caplog.text
    )


def test_no_new_lookup_starts_while_too_many_stalled_ones_are_still_running(
    settings: Any, caplog: pytest.LogCaptureFixture, stalled_resolver: Callable[..., list[Any]]
) -> None:
    # A resolver that never answers must not pile up one stuck thread per saved URL.
    settings.SOURCES = {**settings.SOURCES, "DNS_TIMEOUT": 0.05}
    asked: list[str] = []

    def recording(host: str, *args: Any) -> list[Any]:
        asked.append(host)
        return stalled_resolver(host, *args)

    for n in range(_MAX_PENDING_LOOKUPS):
        url_validate(f"https://slow{n}.example.com/", [], resolver=recording)
    started = time.monotonic()
    url_validate("https://one-more.example.com/", [], resolver=recording)

    assert len(asked) == _MAX_PENDING_LOOKUPS
    assert time.monotonic() - started < 0.05
    assert "https://one-more.example.com/ could not be resolved within 0.05 s" in caplog.text


def test_a_lookup_that_answers_within_the_dns_timeout_is_checked(settings: Any) -> None:
    def slow_but_in_time(host: str, port: int, *args: Any) -> list[Any]:
        time.sleep(0.05)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.9.8.7", port))]

    settings.SOURCES = {**settings.SOURCES, "DNS_TIMEOUT": 2.0}
    with pytest.raises(URLRefused, match=re.escape("https://inside.example.com/ resolves to 10.9.8.7, a private")):
        url_validate("https://inside.example.com/", [], resolver=slow_but_in_time)


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
