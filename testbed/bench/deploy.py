"""`testbed bench deploy`: deploying a 1,000-FB application through the management port.

A `testbed boot -c 127.0.0.1:0` process starts empty, as a FORTE device does; the
benchmark then sends what 4diac IDE would, one request at a time waiting for each
reply: the resource, 1,000 E_CTU, a PV parameter each, a chain of connections
(START.COLD -> FB0.CU, FBk.CUO -> FBk+1.CU) and START. The figure is the time from
the first request until the application runs: the START reply has come back and
the COLD event has travelled the whole chain (the last counter reads 1).

Baseline, same run: the same commands executed in-process (`CommandExecutor`, no
socket), so the ratio is the price of the wire protocol and the second process.
The UDP round trip of the same benchmark (`udp_roundtrip_p99_ms`) comes from
`testbed.bench.udp.run_udp_bench()` (the communication FBs' module) when it exists.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
import time
from collections.abc import Callable

from testbed.bench.figures import Figure
from testbed.errors import BenchmarkError
from testbed.fourdiac.commands import CommandExecutor
from testbed.fourdiac.mgmt_client import BlockingManagementClient
from testbed.fourdiac.mgmt_frames import FrameError
from testbed.runtime.device import Device

__all__ = ["deploy_requests", "measure_deploy_in_process", "measure_deploy_via_socket",
           "run_deploy_bench"]

ANNOUNCE = "testbed: management server listening on "
RES = "RES"


def deploy_requests(fbs: int) -> list[tuple[str, str]]:
    """The deployment as (destination, request XML), in 4diac IDE's order."""
    out: list[tuple[str, str]] = [
        ("", f'<Request ID="1" Action="CREATE"><FB Name="{RES}" Type="EMB_RES"/></Request>')]

    def add(action: str, body: str) -> None:
        out.append((RES, f'<Request ID="{len(out) + 1}" Action="{action}">{body}</Request>'))

    for i in range(fbs):
        add("CREATE", f'<FB Name="C{i}" Type="E_CTU"/>')
    for i in range(fbs):
        add("WRITE", f'<Connection Source="100" Destination="C{i}.PV"/>')
    add("CREATE", '<Connection Source="START.COLD" Destination="C0.CU"/>')
    for i in range(fbs - 1):
        add("CREATE", f'<Connection Source="C{i}.CUO" Destination="C{i + 1}.CU"/>')
    out.append((RES, f'<Request ID="{len(out) + 1}" Action="START"/>'))
    return out


def measure_deploy_in_process(fbs: int) -> float:
    """Seconds to execute the deployment in-process and run the chain to its end."""
    device = Device("bench-baseline")
    device.console = lambda _text: None
    executor = CommandExecutor(device)
    requests = deploy_requests(fbs)
    t0 = time.perf_counter()
    for dest, xml in requests:
        response = executor.execute(dest, xml)
        if not response.ok:
            raise BenchmarkError(f"in-process deploy failed: {response.reason} {xml}")
    res = device.resources[RES]
    res.run_until_idle()
    elapsed = time.perf_counter() - t0
    if res.fbs[f"C{fbs - 1}"].get("CV") != 1:
        raise BenchmarkError("in-process deploy: the COLD event did not reach the last FB")
    device.kill()
    device.clock.close()
    return elapsed


def _last_counter_is_one(client: BlockingManagementClient, fbs: int) -> bool:
    reply = client.request(RES, f'<Request ID="r" Action="READ"><Connection '
                                f'Source="C{fbs - 1}.CV"/></Request>')
    return 'Destination="1"' in reply.xml


def _start_device(timeout_s: float) -> tuple[subprocess.Popen[str], str, int]:
    proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "testbed.cli", "boot", "-c", "127.0.0.1:0",
         "--timeout", str(timeout_s)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "FORTE_BOOT_FILE": ""})
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith(ANNOUNCE):
            host, _, port = line[len(ANNOUNCE):].strip().rpartition(":")
            return proc, host, int(port)
    proc.wait(10)
    raise BenchmarkError("testbed boot -c ended before announcing its port")


def measure_deploy_via_socket(fbs: int, timeout_s: float = 120.0) -> float:
    """Seconds from the first request to a running application, in a second process.

    The client is a blocking socket that sends one request and waits for its reply,
    as 4diac IDE does; the device is `testbed boot -c 127.0.0.1:0` with no boot file.
    """
    proc, host, port = _start_device(timeout_s)
    try:
        requests = deploy_requests(fbs)
        with BlockingManagementClient(host, port, deadline_s=timeout_s) as client:
            t0 = time.perf_counter()
            for dest, xml in requests:
                reply = client.request(dest, xml)
                if not reply.ok:
                    raise BenchmarkError(f"deploy failed: {reply.reason} for {xml}")
            while not _last_counter_is_one(client, fbs):
                time.sleep(0.0005)
            elapsed = time.perf_counter() - t0
            with contextlib.suppress(FrameError, OSError):  # KILL ends the device and its port
                client.request("", '<Request ID="k" Action="KILL"/>')
    finally:
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    return elapsed


def _udp_roundtrip_figures() -> list[Figure]:
    """Hook for the communication FBs' UDP round-trip figure (`deploy/udp_roundtrip_p99_ms`).

    `testbed/bench/udp.py` provides `run_udp_bench() -> list[Figure]`; until it is
    there, the deploy benchmark reports its own figure only.
    """
    try:
        module = importlib.import_module("testbed.bench.udp")
    except ModuleNotFoundError:
        return []
    run: Callable[[], list[Figure]] = module.run_udp_bench
    return run()


def run_deploy_bench(fbs: int = 1000, repeats: int = 3) -> list[Figure]:
    """Best of `repeats` for the socket deployment and for the in-process baseline."""
    socket_s = min(measure_deploy_via_socket(fbs) for _ in range(repeats))
    baseline_s = min(measure_deploy_in_process(fbs) for _ in range(repeats))
    figures = [Figure("deploy", "deploy_1000_fbs_s" if fbs == 1000 else f"deploy_{fbs}_fbs_s",
                      socket_s, "s", "in-process CommandExecutor (no socket)", baseline_s,
                      note=f"{len(deploy_requests(fbs))} requests, one at a time; target < 2 s")]
    return figures + _udp_roundtrip_figures()
