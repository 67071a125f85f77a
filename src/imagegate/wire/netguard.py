"""Which addresses the gateway may fetch an ``image_url`` from: the SSRF decision, pure.

Addresses are judged after DNS resolution (so ``2130706433``, ``0x7f.1`` and a name that resolves
to ``10.0.0.5`` are all judged as what they are), and the fetcher connects to the address that
was judged, so a second DNS answer cannot swap it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Named so the refusal can say what the address is.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"): "a cloud metadata address",
    ipaddress.ip_address("169.254.170.2"): "a cloud metadata address",
    ipaddress.ip_address("fd00:ec2::254"): "a cloud metadata address",
    ipaddress.ip_address("100.100.100.200"): "a cloud metadata address",
}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Non-public ranges that ``is_global`` calls global (on 3.11.7 at least; it varies by release):
# the local-use NAT64 prefix (RFC 8215), which a site translator maps onto its private IPv4
# space, and the deprecated IPv6 site-local range (RFC 3879), still routed inside some sites.
_NON_PUBLIC = (ipaddress.ip_network("64:ff9b:1::/48"), ipaddress.ip_network("fec0::/10"))


def parse_networks(specs: Sequence[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(spec.strip(), strict=False) for spec in specs if spec.strip())


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64, Teredo), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return ip.teredo[1]
    # IPv4-compatible (deprecated) ::a.b.c.d
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))
    return None


def refusal_reason(ip: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why ``ip`` must not be fetched from, or None when it may be.

    ``allowed`` lists networks an operator has opened on purpose (an internal image store);
    they are exempt from every rule below.
    """
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = refusal_reason(inner, allowed)
            return f"{reason} (inside the IPv6 address {ip})" if reason else None
    if ip in _METADATA:
        return _METADATA[ip]
    if any(ip.version == net.version and ip in net for net in _NON_PUBLIC):
        return "a reserved or non-public address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_private:
        return "a private network address"
    if not ip.is_global:
        return "a reserved or non-public address"
    return None
