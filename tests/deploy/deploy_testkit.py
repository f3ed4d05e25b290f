"""Boot files for the deployment tests: a counting application in versions, and a broken one."""

from __future__ import annotations


def counter_app(resource: str = "App", period: str = "T#10ms") -> bytes:
    """A resource whose E_CYCLE drives an E_CTU: CTR.CV grows while the application runs."""
    lines = [
        f';<Request ID="1" Action="CREATE"><FB Name="{resource}" Type="EMB_RES" /></Request>',
        f'{resource};<Request ID="2" Action="CREATE"><FB Name="CYC" Type="E_CYCLE" /></Request>',
        f'{resource};<Request ID="3" Action="CREATE"><FB Name="CTR" Type="E_CTU" /></Request>',
        f'{resource};<Request ID="4" Action="WRITE">'
        f'<Connection Source="{period}" Destination="CYC.DT" /></Request>',
        f'{resource};<Request ID="5" Action="WRITE">'
        f'<Connection Source="30000" Destination="CTR.PV" /></Request>',
        f'{resource};<Request ID="6" Action="CREATE">'
        f'<Connection Source="START.COLD" Destination="CYC.START" /></Request>',
        f'{resource};<Request ID="7" Action="CREATE">'
        f'<Connection Source="CYC.EO" Destination="CTR.CU" /></Request>',
        f'{resource};<Request ID="8" Action="START"/>',
    ]
    return ("\n".join(lines) + "\n").encode()


def broken_app() -> bytes:
    """Loads two lines, then names an FB type that does not exist."""
    lines = counter_app("Broken").decode().splitlines()[:2]
    lines.append(
        'Broken;<Request ID="9" Action="CREATE"><FB Name="X" Type="NO_SUCH_TYPE" /></Request>'
    )
    return ("\n".join(lines) + "\n").encode()
