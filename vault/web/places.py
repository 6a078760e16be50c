"""Where a request comes from: address (behind a known number of proxies) and the named place it is in."""

from __future__ import annotations

import ipaddress

from vault.config.settings import TrustedPlace


def named_place(address: str | None, places: tuple[TrustedPlace, ...]) -> str | None:
    """The name of the first trusted place whose networks contain `address`, or None."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    for place in places:
        if any(ip.version == net.version and ip in net for net in place.networks):
            return place.name
    return None
