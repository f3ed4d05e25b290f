"""IPv4 address checks shared by the UDP and TCP endpoints (no DNS: nothing may block the loop)."""

from __future__ import annotations

import ipaddress

from drivers.errors import DriverConfigError

__all__ = ["numeric_ipv4"]

_LOCAL_NAMES = {"localhost": "127.0.0.1"}


def numeric_ipv4(host: str) -> str:
    """`host` as a dotted IPv4 address; `localhost` is 127.0.0.1; other names are refused.

    Endpoints are opened inside FB event handlers on the event loop, where a DNS
    lookup could block; FORTE's IP layer takes numeric addresses as well.
    """
    text = _LOCAL_NAMES.get(host.strip().lower(), host.strip())
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise DriverConfigError(
            f"{host!r} is not an IPv4 address (host names other than localhost are not "
            "resolved)") from None
