"""`villagelink simulate devices`: a device platform streaming into one village.

It does what an integrator's platform does, over the public GraphQL API only: list
the devices its client runs in the village, then send what they report, every
second, in batches of at most 1,000 through `ingestHealthReadings` and
`ingestDeviceEvents`:

- wristbands: heart rate around each wearer's own resting rate (lower at night),
  SpO2, blood pressure now and then, and a position near home;
- cameras and sensors: heartbeats and ordinary detections;
- now and then an incident (on average every `incident_every` seconds): a fall seen
  by a radar or camera, an SOS, smoke, a vehicle lingering, a blocked fire lane, gas,
  a racing heart or falling SpO2 over several readings, or a wearer walking away from
  home (a missing-person alert when the platform's rules know them to be at risk).

Readings and events carry ids of their own, so a batch sent twice (a timeout, a
retry) is harmless. A status line every ten seconds says what was sent and what came
back.
"""

from __future__ import annotations

import math
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from villagelink.platform.settings import Settings
from villagelink.tenants import clock
from villagelink.tenants.coordinates import moved

BATCH = 1000

DEVICES = """
query SimulatedDevices($village: String!, $after: String) {
  devices(village: $village, first: 100, after: $after) {
    edges { node { id kind latitude longitude status } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

INGEST_READINGS = """
mutation Readings($input: IngestHealthReadingsInput!) {
  ingestHealthReadings(input: $input) {
    accepted duplicates alerts
    itemErrors { index field message code }
    userErrors { field message code }
  }
}
"""

INGEST_EVENTS = """
mutation Events($input: IngestDeviceEventsInput!) {
  ingestDeviceEvents(input: $input) {
    accepted duplicates alerts
    itemErrors { index field message code }
    userErrors { field message code }
  }
}
"""

# Ordinary reports of fixed devices, by the API's DeviceKind: what fills the stream between
# incidents. The event kinds they send are the devices' own free strings, lower-case.
ROUTINE = {
    "AI_CAMERA": ("heartbeat", "heartbeat", "person_detected"),
    "SMOKE_SENSOR": ("heartbeat",),
    "GAS_SENSOR": ("heartbeat",),
    "FIRE_LANE_SENSOR": ("heartbeat", "lane_clear"),
    "MMWAVE_RADAR": ("heartbeat", "presence"),
    "HEALTH_KIOSK": ("heartbeat",),
}
# Incidents: (weight, device kinds that report it, event kind), or a reading episode.
EVENT_INCIDENTS = (
    (6, ("MMWAVE_RADAR",), "fall"),
    (3, ("AI_CAMERA",), "fall"),
    (4, ("WRISTBAND",), "sos"),
    (4, ("SMOKE_SENSOR",), "smoke"),
    (5, ("AI_CAMERA",), "vehicle_lingering"),
    (4, ("FIRE_LANE_SENSOR",), "fire_lane_blocked"),
    (1, ("GAS_SENSOR",), "gas"),
    (1, ("AI_CAMERA",), "fire"),
)
READING_INCIDENTS = ((5, "racing_heart"), (3, "low_spo2"), (2, "wandering"))


class SimulatorError(Exception):
    """The server refused the simulator (auth, reach, no devices); the message says why."""


class TokenSource:
    """Bearer tokens for the simulating client, renewed a minute before they expire: from
    the development issuer, or from Keycloak (client credentials) when it is configured."""

    def __init__(self, settings: Settings, client_id: str, client_secret: str | None = None):
        self.settings = settings
        self.client_id = client_id
        self.client_secret = client_secret
        self.token = ""
        self.renew_at = 0.0

    def __call__(self) -> str:
        if time.monotonic() >= self.renew_at:
            self.token, lifetime = self._fetch()
            self.renew_at = time.monotonic() + lifetime - 60
        return self.token

    def _fetch(self) -> tuple[str, int]:
        if self.settings.dev_issuer_enabled:
            from villagelink.platform.identity.dev_issuer import mint_for_role

            return mint_for_role(self.settings, "integrator", client=self.client_id), 3600
        if not self.client_secret:
            raise SimulatorError(
                "使用 Keycloak 时需要 --client-secret（或 SIMULATOR_CLIENT_SECRET）"
            )
        response = requests.post(
            f"{self.settings.issuer}/protocol/openid-connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
            timeout=30,
        )
        if response.status_code != 200:
            raise SimulatorError(f"Keycloak 拒绝了客户端 {self.client_id}：{response.text}")
        body = response.json()
        return body["access_token"], int(body.get("expires_in", 300))


class GraphQLClient:
    """POSTs operations to one endpoint with one bearer token."""

    def __init__(self, url: str, token: Callable[[], str]):
        self.url = url
        self.token = token
        self.session = requests.Session()

    def execute(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = self.session.post(
            self.url,
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30,
        )
        if response.status_code in (401, 403):
            raise SimulatorError(
                f"服务器拒绝了令牌（HTTP {response.status_code}）：{response.text}"
            )
        body = response.json()
        if body.get("errors"):
            raise SimulatorError(f"GraphQL 错误：{body['errors'][0].get('message')}")
        return body["data"]


@dataclass
class Wearer:
    """A wristband and the person wearing it, as the device platform knows them."""

    device: str
    home: tuple[float, float]
    resting_rate: int
    position: tuple[float, float]
    # Remaining readings of an episode in progress: (kind, readings left).
    episode: tuple[str, int] | None = None
    bearing: float = 0.0


@dataclass
class Totals:
    sent_events: int = 0
    sent_readings: int = 0
    accepted: int = 0
    duplicates: int = 0
    item_errors: int = 0
    alerts: set[str] = field(default_factory=set)
    incidents: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def line(self, seconds: float) -> str:
        p50 = statistics.median(self.latencies_ms) if self.latencies_ms else 0.0
        sent = self.sent_events + self.sent_readings
        return (
            f"[{seconds:6.0f} s] 已发送 {sent} 条（事件 {self.sent_events}，体征 "
            f"{self.sent_readings}）｜入库 {self.accepted}，重复 {self.duplicates}，"
            f"逐条错误 {self.item_errors}｜模拟事故 {self.incidents}，预警 {len(self.alerts)}｜"
            f"请求 p50 {p50:.0f} ms"
        )


class Simulation:
    """What one village's devices report, second by second, from one random seed."""

    def __init__(self, devices: list[dict[str, Any]], rng: random.Random, incident_every: float):
        self.rng = rng
        self.incident_every = incident_every
        self.run = uuid.uuid4().hex[:8]
        self.counter = 0
        self.by_kind: dict[str, list[str]] = {}
        self.wearers: list[Wearer] = []
        for device in devices:
            if device.get("status") == "DISABLED":
                continue
            self.by_kind.setdefault(device["kind"], []).append(device["id"])
            if device["kind"] == "WRISTBAND" and device.get("latitude") is not None:
                home = (device["latitude"], device["longitude"])
                self.wearers.append(
                    Wearer(
                        device["id"],
                        home,
                        rng.randint(60, 82),
                        home,
                        bearing=rng.uniform(0, 2 * math.pi),
                    )
                )
        self.fixed = [
            (kind, device)
            for kind, ids in self.by_kind.items()
            if kind in ROUTINE
            for device in ids
        ]
        self.next_wearer = 0
        self.next_fixed = 0

    def _id(self) -> str:
        self.counter += 1
        return f"sim-{self.run}-{self.counter}"

    def second(self, now: datetime, rate: int) -> tuple[list[dict], list[dict], int]:
        """One second's reports at `rate` items a second: (events, readings, incidents)."""
        events: list[dict] = []
        readings: list[dict] = []
        incidents = 0
        if self.rng.random() < 1 / self.incident_every:
            incidents = 1
            events += self._incident(now)
        wearer_share = 0.8 if self.wearers else 0.0
        for _ in range(rate):
            if self.rng.random() < wearer_share or not self.fixed:
                if self.wearers:
                    readings.append(self._reading(now))
            else:
                events.append(self._routine(now))
        return events, readings, incidents

    def _reading(self, now: datetime) -> dict:
        wearer = self.wearers[self.next_wearer % len(self.wearers)]
        self.next_wearer += 1
        hour = clock.local(now).hour
        night = hour < 6 or hour >= 22
        heart = wearer.resting_rate + (-6 if night else self.rng.randint(0, 12))
        spo2 = self.rng.randint(95, 99)
        kind = None
        if wearer.episode:
            kind, left = wearer.episode
            wearer.episode = (kind, left - 1) if left > 1 else None
        if kind == "racing_heart":
            heart = self.rng.randint(128, 150)
        elif kind == "low_spo2":
            spo2 = self.rng.randint(84, 88)
        elif kind == "wandering":
            # About 40 m further from home with every reading.
            wearer.position = _walked(wearer.position, 40, wearer.bearing)
        else:
            wearer.position = _walked(
                wearer.home, self.rng.uniform(0, 60), self.rng.uniform(0, 2 * math.pi)
            )
        reading = {
            "device": wearer.device,
            "readingId": self._id(),
            "measuredAt": now.isoformat(),
            "heartRate": heart,
            "spo2": spo2,
            "latitude": wearer.position[0],
            "longitude": wearer.position[1],
        }
        if self.rng.random() < 0.05:
            reading["systolic"] = self.rng.randint(112, 148)
            # Ordinary pressures: only the incidents above should raise alerts.
            reading["diastolic"] = self.rng.randint(68, 88)
        return reading

    def _routine(self, now: datetime) -> dict:
        kind, device = self.fixed[self.next_fixed % len(self.fixed)]
        self.next_fixed += 1
        return self._event(device, self.rng.choice(ROUTINE[kind]), now)

    def _event(self, device: str, kind: str, now: datetime, **details: Any) -> dict:
        return {
            "device": device,
            "eventId": self._id(),
            "kind": kind,
            "occurredAt": now.isoformat(),
            "details": {"simulated": True, **details},
        }

    def _incident(self, now: datetime) -> list[dict]:
        weights = [w for w, kinds, _ in EVENT_INCIDENTS if self._any(kinds)]
        weights += [w for w, _ in READING_INCIDENTS] if self.wearers else []
        if not weights:
            return []
        options = [o for o in EVENT_INCIDENTS if self._any(o[1])]
        choice = self.rng.choices(range(len(weights)), weights)[0]
        if choice < len(options):
            _, kinds, event = options[choice]
            devices = [d for kind in kinds for d in self.by_kind.get(kind, [])]
            return [self._event(self.rng.choice(devices), event, now, confidence=0.93)]
        episode = READING_INCIDENTS[choice - len(options)][1]
        wearer = self.rng.choice(self.wearers)
        wearer.episode = (episode, 40 if episode == "wandering" else 6)
        return []

    def _any(self, kinds: tuple[str, ...]) -> bool:
        return any(self.by_kind.get(kind) for kind in kinds)


def _walked(origin: tuple[float, float], metres: float, bearing: float) -> tuple[float, float]:
    """`metres` from `origin` towards `bearing` (radians from north)."""
    return moved(*origin, metres * math.cos(bearing), metres * math.sin(bearing))


def list_devices(client: GraphQLClient, village: str) -> list[dict[str, Any]]:
    """Every device the client runs in `village`, page by page."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.execute(DEVICES, {"village": village, "after": after})["devices"]
        found += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def _chunks(items: list[dict]) -> Iterator[list[dict]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def send(client: GraphQLClient, totals: Totals, events: list[dict], readings: list[dict]) -> None:
    for name, query, key, items in (
        ("ingestHealthReadings", INGEST_READINGS, "readings", readings),
        ("ingestDeviceEvents", INGEST_EVENTS, "events", events),
    ):
        for chunk in _chunks(items):
            started = time.perf_counter()
            result = client.execute(query, {"input": {key: chunk}})[name]
            totals.latencies_ms.append((time.perf_counter() - started) * 1000)
            if result["userErrors"]:
                raise SimulatorError(f"{name} 被拒绝：{result['userErrors'][0]['message']}")
            totals.accepted += result["accepted"]
            totals.duplicates += result["duplicates"]
            totals.item_errors += len(result["itemErrors"])
            totals.alerts.update(result["alerts"])
            for error in result["itemErrors"][:3]:
                print(f"  第 {error['index']} 条被拒：{error['message']}（{error['code']}）")
        if key == "readings":
            totals.sent_readings += len(items)
        else:
            totals.sent_events += len(items)


def simulate(
    client: GraphQLClient,
    village: str,
    rate: int,
    *,
    duration: float | None = None,
    incident_every: float = 60.0,
    seed: int | None = None,
    report_every: float = 10.0,
    echo: Callable[[str], None] = print,
) -> Totals:
    """Stream `rate` reports a second into `village` until `duration` seconds have passed
    (forever without one); returns the totals."""
    devices = list_devices(client, village)
    if not devices:
        raise SimulatorError(
            f"这个客户端在 {village} 没有设备：先用 registerDevice 登记设备"
            "（或用演示数据：demo-integrator 在 liulin 与 taoyuan 运行设备）"
        )
    simulation = Simulation(devices, random.Random(seed), incident_every)
    echo(
        f"模拟 {village} 的 {len(devices)} 台设备（手环 {len(simulation.wearers)}），"
        f"每秒 {rate} 条，平均每 {incident_every:.0f} 秒一起事故；Ctrl-C 停止"
    )
    totals = Totals()
    started = time.monotonic()
    next_report = started + report_every
    tick = started
    while duration is None or time.monotonic() - started < duration:
        events, readings, incidents = simulation.second(clock.now(), rate)
        totals.incidents += incidents
        send(client, totals, events, readings)
        if time.monotonic() >= next_report:
            echo(totals.line(time.monotonic() - started))
            totals.latencies_ms = totals.latencies_ms[-200:]
            next_report += report_every
        tick += 1
        time.sleep(max(0.0, tick - time.monotonic()))
    echo(totals.line(time.monotonic() - started))
    return totals
