"""The SSRF guard on callback URLs.

No test here touches real DNS: host names are resolved by an injected resolver.
"""

import asyncio

import pytest

from api.callbacks import (
    Target,
    UnsafeCallbackUrl,
    check_callback_url,
)
from api.errors import ValidationFailed
from tests.callbacks_helpers import PUBLIC_V4, PUBLIC_V6, FakeResolver

# --- the SSRF guard ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "callbackUrl resolves to 127.0.0.1, a loopback address"),
        ("http://localhost:8000/hook", "callbackUrl resolves to 127.0.0.1, a loopback address"),
        ("https://10.0.0.1/hook", "resolves to 10.0.0.1, a private address"),
        ("https://172.16.5.4/hook", "resolves to 172.16.5.4, a private address"),
        ("https://192.168.0.1/hook", "resolves to 192.168.0.1, a private address"),
        ("https://intranet.corp/hook", "resolves to 10.1.2.3, a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address (cloud metadata)"),
        ("http://metadata.example/", "169.254.169.254, a link-local address"),
        ("http://169.254.1.1/", "a link-local address"),
        ("http://[::1]/hook", "resolves to ::1, a loopback address"),
        ("http://[fe80::1]/hook", "resolves to fe80::1, a link-local address"),
        ("http://[fc00::1]/hook", "resolves to fc00::1, a unique-local address"),
        ("http://[fd12:3456::1]/hook", "a unique-local address"),
        ("http://[::ffff:127.0.0.1]/hook", "which stands for 127.0.0.1, a loopback address"),
        ("http://mapped.example/hook", "which stands for 127.0.0.1, a loopback address"),
        ("http://[2002:a00:1::]/hook", "which stands for 10.0.0.1, a private address"),  # 6to4
        ("http://[64:ff9b::a9fe:a9fe]/hook", "which stands for 169.254.169.254"),  # NAT64
        ("http://[::127.0.0.1]/hook", "a reserved address"),  # IPv4-compatible, deprecated
        ("http://100.64.0.1/hook", "resolves to 100.64.0.1, a carrier-grade NAT address"),
        ("http://0.0.0.0/hook", "resolves to 0.0.0.0, an unspecified address"),
        ("http://[::]/hook", "resolves to ::, an unspecified address"),
        ("http://224.0.0.1/hook", "a multicast address"),
        ("http://[ff02::1]/hook", "a multicast address"),
        ("http://240.0.0.1/hook", "a reserved address"),
        ("http://255.255.255.255/hook", "a reserved address"),
        ("http://198.18.0.1/hook", "a benchmarking address"),
        ("http://192.0.2.10/hook", "a documentation address"),
        ("http://[2001:db8::1]/hook", "a documentation address"),
        ("http://2130706433/hook", "resolves to 127.0.0.1, a loopback address"),
        ("http://0x7f.1/hook", "resolves to 127.0.0.1, a loopback address"),
        ("http://0x7f000001/hook", "resolves to 127.0.0.1, a loopback address"),
        ("http://127.1/hook", "resolves to 127.0.0.1, a loopback address"),
        ("http://0xa.0.0.1/hook", "resolves to 10.0.0.1, a private address"),
        ("http://127.0.0.1./hook", "resolves to 127.0.0.1, a loopback address"),
        ("http://split.example/hook", "resolves to 192.168.1.10, a private address"),
        ("ftp://api.yourapp.com/hook", "callbackUrl must use http or https"),
        ("file:///etc/passwd", "callbackUrl must use http or https"),
        ("javascript:alert(1)", "callbackUrl must use http or https"),
        ("api.yourapp.com/hook", "callbackUrl must use http or https"),
        ("http:///hook", "callbackUrl must include a host"),
        ("https://nowhere.invalid/hook", "callbackUrl host could not be resolved"),
        ("https://user:pass@api.yourapp.com/hook", "must not contain credentials"),
        ("https://api.yourapp.com@127.0.0.1/hook", "must not contain credentials"),
        ("https://api.yourapp.com:0/hook", "port must be between 1 and 65535"),
        ("https://api.yourapp.com:70000/hook", "port must be between 1 and 65535"),
        ("http://%31%32%37.0.0.1/hook", "is not a valid"),
        ("http://1.2.3.4.5/hook", "host is not a valid IPv4 address"),
        ("http://256.256.256.256.256/", "host is not a valid IPv4 address"),
        ("http://[fe80::1%25eth0]/hook", "zone identifier"),
        ("http://bad_host!.example/hook", "host is not a valid host name"),
    ],
)
async def test_unsafe_callback_urls_are_refused_with_a_reason(url, reason):
    with pytest.raises(UnsafeCallbackUrl) as refused:
        await check_callback_url(url, allow_private=False, resolver=FakeResolver())
    assert reason in refused.value.reason
    assert refused.value.reason.startswith("callbackUrl ")


async def test_refusal_is_a_422_validation_error_on_callback_url():
    with pytest.raises(ValidationFailed) as refused:
        await check_callback_url("http://127.0.0.1/", allow_private=False, resolver=FakeResolver())
    error = refused.value
    assert error.status == 422
    assert error.errors == [{"loc": ["callbackUrl"], "msg": "callbackUrl resolves to 127.0.0.1, a loopback address"}]
    assert error.problem()["errors"][0]["loc"] == ["callbackUrl"]


async def test_numeric_ipv4_tricks_never_reach_the_resolver():
    resolver = FakeResolver()
    for url in ("http://2130706433/", "http://0x7f.1/", "http://017700000001/", "http://[::1]/"):
        with pytest.raises(UnsafeCallbackUrl):
            await check_callback_url(url, allow_private=False, resolver=resolver)
    assert resolver.asked == []


async def test_a_public_host_passes_with_every_address_it_resolves_to():
    target = await check_callback_url(
        "https://api.yourapp.com/webhooks/cheqpoint-decision?tenant=7", allow_private=False,
        resolver=FakeResolver(),
    )
    assert target == Target(
        url="https://api.yourapp.com/webhooks/cheqpoint-decision?tenant=7", scheme="https",
        host="api.yourapp.com", port=443, addresses=[PUBLIC_V4, PUBLIC_V6],
    )


@pytest.mark.parametrize(
    ("url", "host", "port", "addresses"),
    [
        (f"http://{PUBLIC_V4}:8080/hook", PUBLIC_V4, 8080, [PUBLIC_V4]),
        (f"https://[{PUBLIC_V6}]/hook", PUBLIC_V6, 443, [PUBLIC_V6]),
        ("HTTPS://API.YourApp.com/hook", "api.yourapp.com", 443, [PUBLIC_V4, PUBLIC_V6]),
        ("http://0x5d.0xb8.0xd8.0x22/", PUBLIC_V4, 80, [PUBLIC_V4]),  # a numeric trick, but public
        ("http://[::ffff:93.184.216.34]/", "::ffff:5db8:d822", 80, ["::ffff:5db8:d822"]),
        ("http://[64:ff9b::93.184.216.34]/", "64:ff9b::5db8:d822", 80, ["64:ff9b::5db8:d822"]),
    ],
)
async def test_public_addresses_pass(url, host, port, addresses):
    target = await check_callback_url(url, allow_private=False, resolver=FakeResolver())
    assert (target.host, target.port, target.addresses) == (host, port, addresses)


async def test_international_names_are_resolved_in_their_ascii_form():
    resolver = FakeResolver({"xn--bcher-kva.example": [PUBLIC_V4]})
    target = await check_callback_url("https://bücher.example/hook", allow_private=False, resolver=resolver)
    assert target.host == "xn--bcher-kva.example"
    assert resolver.asked == ["xn--bcher-kva.example"]


async def test_allow_private_lets_loopback_through_but_not_other_schemes_or_unknown_hosts():
    target = await check_callback_url("http://127.0.0.1:9000/hook", allow_private=True, resolver=FakeResolver())
    assert target.addresses == ["127.0.0.1"]
    target = await check_callback_url("http://localhost/hook", allow_private=True, resolver=FakeResolver())
    assert target.addresses == ["127.0.0.1", "::1"]

    with pytest.raises(UnsafeCallbackUrl, match="must use http or https"):
        await check_callback_url("ftp://127.0.0.1/", allow_private=True, resolver=FakeResolver())
    with pytest.raises(UnsafeCallbackUrl, match="could not be resolved"):
        await check_callback_url("http://nowhere.invalid/", allow_private=True, resolver=FakeResolver())


async def test_a_resolver_that_hangs_or_answers_nothing_counts_as_unresolvable(monkeypatch):
    async def empty(host, port):
        return []

    with pytest.raises(UnsafeCallbackUrl, match="could not be resolved"):
        await check_callback_url("https://api.yourapp.com/", allow_private=False, resolver=empty)

    async def hangs(host, port):
        await asyncio.sleep(60)
        return [PUBLIC_V4]

    monkeypatch.setattr("api.callbacks.ssrf.RESOLVE_TIMEOUT_SECONDS", 0.05)
    with pytest.raises(UnsafeCallbackUrl, match="could not be resolved"):
        await check_callback_url("https://api.yourapp.com/", allow_private=False, resolver=hangs)
