"""Cloud FBs on a real device: telemetry to the cloud, cloud commands and twin into FB events."""

from __future__ import annotations

import json
from pathlib import Path

from cloud_fb_testkit import cloud_fb, new_resource, running_device

from drivers.mqtt import EmbeddedBroker, EmbeddedBrokerConfig, MqttClientConfig
from drivers.mqtt.sparkplug import DataType
from testbed.cloud import CloudConfig, CloudService


def _link_id(port: int, store: Path) -> str:
    return f"'mqtt://127.0.0.1:{port}/plant/edge1?host=cloud&store={store}'"


async def test_telemetry_commands_and_twin_share_one_link(tmp_path: Path) -> None:
    """Telemetry batches by exception into DDATA; DCMD and desired twin come back as IND."""
    async with (
        EmbeddedBroker(EmbeddedBrokerConfig(port=0)) as broker,
        CloudService(
            CloudConfig(
                mqtt=MqttClientConfig(port=broker.port), host_id="cloud", db_path=tmp_path / "c.db"
            )
        ) as cloud,
        running_device("edge") as device,
    ):
        await cloud.wait_connected(5)
        link = _link_id(broker.port, tmp_path / "edge.db")
        res, rec = new_resource(device)
        cloud_fb(res, "Tel", "CLOUD_TELEMETRY_2", ID=link, DEVICE="'pump'",
                 NAMES="'speed, running'", DEADBAND="0.5", SD_1="LREAL#10.0", SD_2="TRUE")
        cloud_fb(res, "Cmd", "CLOUD_COMMAND_1", ID=link, DEVICE="'valve'", NAMES="'open_pct'")
        cloud_fb(res, "Twin", "CLOUD_TWIN", ID=link)
        for name in ("Tel", "Cmd", "Twin"):
            res.connect("START.COLD", f"{name}.INIT")
        res.start()
        for name in ("Tel", "Cmd", "Twin"):
            (init,) = await rec.wait(name, "INITO")
            assert init.values == {"QO": True, "STATUS": "OK"}, name
        for count, speed in enumerate(("10.0", "10.2", "11.0"), start=1):
            res.write_parameter("Tel.SD_1", f"LREAL#{speed}")  # 10.2: inside the 0.5 deadband
            res.inject("Tel.REQ")
            cnfs = await rec.wait("Tel", "CNF", count=count)
        assert all(c.values["QO"] is True for c in cnfs)
        await cloud.wait_until(lambda s: s.messages_ingested >= 2, 10)
        speeds = [s.value for s in await cloud.query("edge1", "pump", "speed")]
        assert speeds == [10.0, 11.0]
        assert [s.value for s in await cloud.query("edge1", "pump", "running")] == [True]

        await cloud.send_command("plant", "edge1", {"open_pct": (DataType.DOUBLE, 42.5)}, "valve")
        (ind,) = await rec.wait("Cmd", "IND")
        assert ind.values == {"QO": True, "STATUS": "OK", "RD_1": 42.5}

        await cloud.set_desired("plant", "edge1", {"mode": "eco"})
        (desired,) = await rec.wait("Twin", "IND")
        assert json.loads(str(desired.values["DESIRED"])) == {"mode": "eco"}
        assert desired.values["VERSION"] == 1
        res.write_parameter("Twin.REPORTED", "'{\"mode\": \"eco\"}'")
        res.inject("Twin.REQ")
        (cnf,) = await rec.wait("Twin", "CNF")
        assert cnf.values["QO"] is True
        await cloud.wait_until(lambda s: s.messages_ingested >= 3, 10)
        twin = await cloud.twin("plant", "edge1")
        assert twin.delta == {}
        assert twin.reported.version == 1
        res.stop()


async def test_invalid_id_fails_init_with_a_clear_status() -> None:
    """A malformed ID answers INITO with QO=FALSE and a status naming the problem."""
    async with running_device("edge") as device:
        res, rec = new_resource(device)
        cloud_fb(res, "Tel", "CLOUD_TELEMETRY_1", ID="'http://nowhere'", DEVICE="'d'",
                 NAMES="'x'")
        res.connect("START.COLD", "Tel.INIT")
        res.start()
        (init,) = await rec.wait("Tel", "INITO")
        assert init.values["QO"] is False
        assert str(init.values["STATUS"]).startswith("INVALID_ID")
        assert "http://nowhere" in str(init.values["STATUS"])
