"""Which bucket a client address counts in (chalicelib/web/callers.py)."""

import pytest

from chalicelib.web.callers import address_group


@pytest.mark.parametrize(
    ("address", "group"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::abcd", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:198.51.100.9", "198.51.100.9"),
        ("unknown", "unknown"),
        ("", ""),
    ],
)
def test_an_ipv4_address_counts_alone_and_an_ipv6_address_by_its_64(address, group):
    # GIVEN a client address as API Gateway reports it THEN it counts in this bucket
    assert address_group(address) == group
