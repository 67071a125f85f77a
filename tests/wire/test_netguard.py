"""The SSRF decision itself: which addresses ``refusal_reason`` refuses, and why.

Pure: nothing here opens a socket. How the fetcher reaches this decision (DNS, literals, odd
spellings of 127.0.0.1, redirects) is in ``test_fetch.py``.
"""

from __future__ import annotations

import ipaddress

import pytest

from imagegate.wire.netguard import parse_networks, refusal_reason


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


# (address, a word the reason must contain)
REFUSED = [
    # loopback
    ("127.0.0.1", "loopback"),
    ("127.1.2.3", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    # private networks (RFC 1918)
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.0.1", "private"),
    ("192.168.255.255", "private"),
    # link-local
    ("169.254.0.1", "link-local"),
    ("169.254.254.254", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("febf:ffff::1", "link-local"),
    # cloud metadata, named as such
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"),
    # carrier-grade NAT (RFC 6598)
    ("100.64.0.1", "non-public"),
    ("100.127.255.254", "non-public"),
    # "this host" / unspecified
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", ""),
    ("::", "unspecified"),
    # multicast and broadcast
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("255.255.255.255", ""),
    # benchmarking, reserved, IETF protocol assignments
    ("198.18.0.1", ""),
    ("198.19.255.254", ""),
    ("240.0.0.1", ""),
    ("250.1.2.3", ""),
    ("192.0.0.1", ""),
    # documentation
    ("192.0.2.1", ""),
    ("198.51.100.7", ""),
    ("203.0.113.9", ""),
    ("2001:db8::1", ""),
    # IPv6 unique local (fc00::/7) and the deprecated site-local range
    ("fc00::1", "private"),
    ("fd12:3456:789a::1", "private"),
    ("fec0::1", "non-public"),
    # IPv6 discard-only
    ("100::1", ""),
]

# IPv6 addresses that stand for an IPv4 address: judged as that address.
EMBEDDED = [
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:7f00:1", "loopback"),  # the same, in hex
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:0.0.0.0", "unspecified"),
    ("64:ff9b::a00:1", "private"),  # NAT64 (RFC 6052) of 10.0.0.1
    ("64:ff9b::7f00:1", "loopback"),
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
    ("::127.0.0.1", "loopback"),  # IPv4-compatible (deprecated)
    ("::10.1.2.3", "private"),
    ("::2", ""),  # IPv4-compatible 0.0.0.2, "this network"
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", ""),  # Teredo, client 192.0.2.45
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "9.9.9.9",
    "172.32.0.1",  # just past 172.16/12
    "100.128.0.1",  # just past 100.64/10
    "169.253.255.255",  # just before 169.254/16
    "11.0.0.1",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",  # mapped public
    "64:ff9b::808:808",  # NAT64 of a public address: what NAT64 is for
    "2002:808:808::1",  # 6to4 of a public address
]


@pytest.mark.parametrize(("address", "word"), REFUSED)
def test_non_public_addresses_are_refused(address: str, word: str) -> None:
    reason = refusal_reason(_ip(address))
    assert reason is not None, address
    assert word in reason


@pytest.mark.parametrize(("address", "word"), EMBEDDED)
def test_ipv6_forms_of_ipv4_are_judged_as_the_ipv4_address(address: str, word: str) -> None:
    reason = refusal_reason(_ip(address))
    assert reason is not None, address
    assert word in reason
    assert "inside the IPv6 address" in reason


@pytest.mark.parametrize("address", ["64:ff9b:1::a00:1", "64:ff9b:1::808:808"])
def test_the_local_use_nat64_prefix_is_refused(address: str) -> None:
    # RFC 8215: a site's own translator; where the IPv4 address sits is site-specific.
    assert refusal_reason(_ip(address)) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal_reason(_ip(address)) is None


def test_the_metadata_reason_wins_over_link_local() -> None:
    assert refusal_reason(_ip("169.254.169.254")) == "a cloud metadata address"
    assert refusal_reason(_ip("169.254.169.253")) == "a link-local address"


# --- the operator's allow-list -------------------------------------------------------------

LOOPBACK_ONLY = parse_networks(["127.0.0.1/32"])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::ffff:127.0.0.1",  # the mapped form of an opened address is the same host
        "::127.0.0.1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
    ],
)
def test_an_allowed_network_and_its_ipv6_forms_are_exempt(address: str) -> None:
    assert refusal_reason(_ip(address), LOOPBACK_ONLY) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.2",  # same /8, outside the /32
        "127.1.2.3",
        "::1",  # IPv6 loopback is another network
        "::ffff:127.0.0.2",
        "10.0.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "fd00:ec2::254",
        "100.64.0.1",
        "0.0.0.0",
        "fc00::1",
    ],
)
def test_an_allow_list_exempts_nothing_else(address: str) -> None:
    assert refusal_reason(_ip(address), LOOPBACK_ONLY) is not None


def test_an_allowed_private_network_does_not_open_the_metadata_address() -> None:
    allowed = parse_networks(["10.0.0.0/8", "fd00:1234::/32"])
    assert refusal_reason(_ip("10.20.30.40"), allowed) is None
    assert refusal_reason(_ip("::ffff:10.20.30.40"), allowed) is None
    assert refusal_reason(_ip("fd00:1234::5"), allowed) is None
    assert refusal_reason(_ip("169.254.169.254"), allowed) == "a cloud metadata address"
    assert refusal_reason(_ip("fd00:ec2::254"), allowed) == "a cloud metadata address"
    assert refusal_reason(_ip("11.0.0.1"), allowed) is None  # public stays public


def test_an_ipv4_network_never_matches_an_unrelated_ipv6_address() -> None:
    # 127.0.0.1 is 0x7f000001; so is the low half of ::7f00:1, but also of fd00::7f00:1.
    assert refusal_reason(_ip("fd00::7f00:1"), LOOPBACK_ONLY) is not None


def test_parse_networks_reads_the_setting() -> None:
    nets = parse_networks([" 127.0.0.1/32 ", "", "10.1.2.3/8", "fd00::/8", "  "])
    assert [str(net) for net in nets] == ["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]


def test_parse_networks_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="does not appear"):
        parse_networks(["localhost"])
