"""The guard that keeps callbacks off our own network (CONTRACT §4).

`check_callback_url` runs at intake, to refuse a bad `callbackUrl` with 422, and again before every
delivery attempt, because DNS can change between the two (rebinding). It returns a `Target` whose
`addresses` are the ones it checked; delivery connects to those and never resolves the name again.

Decisions worth knowing:
- Credentials in the URL (`user:pass@`) are refused: the URL is stored, listed and shown to operators,
  and `trusted@evil` is a classic way to mislead a reader. Receivers authenticate us by signature.
- Numeric IPv4 forms that browsers and `inet_aton` accept (`2130706433`, `0x7f.1`, `0177.0.0.1`,
  `127.1`) are read as the address they stand for, per the WHATWG URL standard, and checked like any
  literal; they never reach a DNS resolver. A host that ends in a number but is no valid IPv4 is refused.
- Address classes are listed explicitly below instead of trusting `ipaddress.is_global` alone: its
  answers vary between Python releases and it calls some embeddings of private IPv4 addresses global
  (`2002:7f00:1::`, `64:ff9b::a00:1`, `::127.0.0.1` on 3.11). `is_global` is kept only as a last,
  stricter check.
"""

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import httpx

from api.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Iterable[str]]]

DEFAULT_PORTS = {"http": 80, "https": 443}
# getaddrinfo can hang on a broken resolver; intake must answer, and a retry will ask again.
RESOLVE_TIMEOUT_SECONDS = 5.0


class UnsafeCallbackUrl(ValidationFailed):
    """A callbackUrl we will not call; the reason names the rule it breaks."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, errors=[{"loc": ["callbackUrl"], "msg": reason}])
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """A checked callback destination: where to connect, and what to call it on the wire."""

    url: str
    scheme: str
    host: str  # ASCII (IDNA) host name, or the canonical text of an IP literal (IPv6 without brackets)
    port: int  # always set: the explicit port or the scheme's default
    addresses: list[str] = field(default_factory=list)  # every address the host resolved to; all passed


def _v4(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr)


def _v6(cidr: str) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(cidr)


# Checked in order; the first match names the refusal. Sources: IANA special-purpose registries.
_REFUSED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_v4("0.0.0.0/8"), "an unspecified address"),
    (_v4("10.0.0.0/8"), "a private address"),
    (_v4("100.64.0.0/10"), "a carrier-grade NAT address"),
    (_v4("127.0.0.0/8"), "a loopback address"),
    (_v4("169.254.169.254/32"), "a link-local address (cloud metadata)"),
    (_v4("169.254.0.0/16"), "a link-local address"),
    (_v4("172.16.0.0/12"), "a private address"),
    (_v4("192.0.0.0/24"), "a reserved address"),  # IETF protocol assignments, Oracle metadata
    (_v4("192.0.2.0/24"), "a documentation address"),
    (_v4("192.88.99.0/24"), "a reserved address"),  # former 6to4 relay anycast
    (_v4("192.168.0.0/16"), "a private address"),
    (_v4("198.18.0.0/15"), "a benchmarking address"),
    (_v4("198.51.100.0/24"), "a documentation address"),
    (_v4("203.0.113.0/24"), "a documentation address"),
    (_v4("224.0.0.0/4"), "a multicast address"),
    (_v4("240.0.0.0/4"), "a reserved address"),  # includes the broadcast 255.255.255.255
    # Public space, but Azure's WireServer answers VMs there like a metadata service.
    (_v4("168.63.129.16/32"), "a cloud metadata address"),
)

_REFUSED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_v6("::/128"), "an unspecified address"),
    (_v6("::1/128"), "a loopback address"),
    (_v6("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (_v6("100::/64"), "a discard-only address"),
    (_v6("2001:db8::/32"), "a documentation address"),
    (_v6("2001::/23"), "a reserved address"),  # IETF protocol assignments: Teredo, benchmarking, ORCHID
    (_v6("3fff::/20"), "a documentation address"),
    (_v6("5f00::/16"), "a reserved address"),  # SRv6 segment identifiers
    (_v6("fc00::/7"), "a unique-local address"),
    (_v6("fe80::/10"), "a link-local address"),
    (_v6("fec0::/10"), "a site-local address"),
    (_v6("ff00::/8"), "a multicast address"),
)

# Outside these, an IPv6 address is not global unicast at all (covers ::/8's IPv4-compatible forms).
_GLOBAL_UNICAST_V6 = _v6("2000::/3")
_NAT64_WELL_KNOWN = _v6("64:ff9b::/96")

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_NUMBER_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")


def _refuse(reason: str) -> UnsafeCallbackUrl:
    return UnsafeCallbackUrl(f"callbackUrl {reason}")


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for, when it is a mapping or a translation of one."""
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d — the OS connects to a.b.c.d
        return ip.ipv4_mapped
    if ip.sixtofour is not None:  # 2002:AABB:CCDD::/48 — 6to4 relays reach a.b.c.d
        return ip.sixtofour
    if ip in _NAT64_WELL_KNOWN:  # 64:ff9b::a.b.c.d — a NAT64 gateway reaches a.b.c.d
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """Why `ip` is not a public address we may call, as a phrase ("a loopback address"), or None.

    An IPv6 address that embeds an IPv4 one is judged by the IPv4 address, since that is where the
    packets end up; the phrase then says so ("which stands for 127.0.0.1, a loopback address").
    """
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = _embedded_v4(ip)
        if mapped is not None:
            inner = address_refusal(mapped)
            return f"which stands for {mapped}, {inner}" if inner else None
        for network, label in _REFUSED_V6:
            if ip in network:
                return label
        if ip not in _GLOBAL_UNICAST_V6:
            return "a reserved address"
    else:
        for network, label in _REFUSED_V4:
            if ip in network:
                return label
    # A backstop only: never the reason we accept, sometimes a reason we refuse.
    if not ip.is_global:
        return "a non-public address"
    return None


def _parse_ipv4_number(host: str) -> ipaddress.IPv4Address | None:
    """Read a host that ends in a number as IPv4, the way browsers and `inet_aton` do.

    Returns None for host names; raises for hosts that look numeric but are no valid address.
    """
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()  # one trailing dot is allowed ("127.0.0.1.")
    if not _NUMBER_LABEL.fullmatch(labels[-1]):
        return None
    if len(labels) > 4:
        raise _refuse("host is not a valid IPv4 address")
    numbers = []
    for label in labels:
        if not _NUMBER_LABEL.fullmatch(label):
            raise _refuse("host is not a valid IPv4 address")
        if label[:2].lower() == "0x":
            numbers.append(int(label[2:] or "0", 16))
        elif len(label) > 1 and label.startswith("0"):
            if not set(label) <= set("01234567"):
                raise _refuse("host is not a valid IPv4 address")
            numbers.append(int(label, 8))
        else:
            numbers.append(int(label))
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise _refuse("host is not a valid IPv4 address")
    value = last
    for position, n in enumerate(leading):
        value += n << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def _ip_literal(raw_host: str) -> IPAddress | None:
    """The address a host names directly, or None when it is a name to resolve."""
    if ":" in raw_host:  # httpx only lets a colon into the host from an [IPv6] literal
        if "%" in raw_host:
            raise _refuse("host must not carry an IPv6 zone identifier")
        try:
            return ipaddress.IPv6Address(raw_host)
        except ValueError:
            raise _refuse("host is not a valid IPv6 address") from None
    return _parse_ipv4_number(raw_host)


def _check_host_name(host: str) -> None:
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        raise _refuse("host is not a valid host name")


async def resolve_host(host: str, port: int) -> list[str]:
    """The system resolver: every address `host` has for a TCP connection."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]) for *_, sockaddr in infos]


async def _resolve(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            answers = list(await resolver(host, port))
    except (OSError, TimeoutError, UnicodeError):  # socket.gaierror is an OSError
        raise _refuse("host could not be resolved") from None
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            ip = ipaddress.ip_address(answer)
        except ValueError:
            raise _refuse(f"host resolves to {answer!r}, which is not an IP address") from None
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            ip = ipaddress.IPv6Address(answer.split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise _refuse("host could not be resolved")
    return addresses


async def check_callback_url(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> Target:
    """Check that `url` may be called back and return where to connect.

    Raises `UnsafeCallbackUrl` (422) naming the broken rule. With `allow_private` (development and
    tests) the address classes are not checked; the URL must still be http(s) and resolve.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise _refuse(f"is not a valid URL ({exc})") from None
    scheme = parsed.scheme
    if scheme not in DEFAULT_PORTS:
        raise _refuse("must use http or https")
    if parsed.userinfo:
        raise _refuse("must not contain credentials (user:password@)")
    raw_host = parsed.raw_host.decode("ascii", errors="replace")  # odd bytes fail the name check
    if not raw_host:
        raise _refuse("must include a host")
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[scheme]
    if not 1 <= port <= 65535:
        raise _refuse("port must be between 1 and 65535")

    literal = _ip_literal(raw_host)
    if literal is not None:
        host = str(literal)
        addresses: list[IPAddress] = [literal]
    else:
        _check_host_name(raw_host)
        host = raw_host.lower()
        addresses = await _resolve(host, port, resolver or resolve_host)

    if not allow_private:
        for ip in addresses:
            refusal = address_refusal(ip)
            if refusal is not None:
                raise _refuse(f"resolves to {ip}, {refusal}")
    return Target(url=url, scheme=scheme, host=host, port=port, addresses=[str(ip) for ip in addresses])
