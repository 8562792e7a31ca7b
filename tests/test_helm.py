"""The Helm chart (helm/villagelink) as a cluster would take it: `helm lint --strict` clean,
`helm template` with each value set under helm/villagelink/ci/ checked against the Kubernetes
API's own schemas (the kubernetes-validate package, strict: an unknown field is an error),
and wrong values refused by values.schema.json with a message that names them.

Helm is the real client, built once by `make fetch-services` (platform/services.py). Each value
set is rendered by one helm process and validated in this one; nothing here needs a server.
"""

from __future__ import annotations

import base64
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import psutil
import pytest
import requests
import yaml

from villagelink.jobs.queues import QUEUES
from villagelink.platform.embedded import free_port
from villagelink.platform.services import helm_binary
from villagelink.platform.settings import load_settings

CHART = Path(__file__).resolve().parents[1] / "helm" / "villagelink"
VALUE_SETS = ("minimal", "production", "everything-on")
# The chart's kubeVersion floor and the newest API the package carries schemas for: what
# renders valid against both is valid for every version the chart admits in between.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
# The one object validated by nothing here: the Prometheus Operator's ServiceMonitor is a
# custom resource, whose schema is the operator's CRD, not part of the Kubernetes API.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
# Read by the settings only to start the embedded servers, which never start in a pod: the
# chart always sets DATABASE_URL and REDIS_URL.
EMBEDDED_ONLY = {"EMBEDDED_POSTGRES_PORT", "EMBEDDED_REDIS_PORT"}
SECRET_NAMES = {
    "DATABASE_URL",
    "DATABASE_DIRECT_URL",
    "REDIS_URL",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "KEYCLOAK_ADMIN_CLIENT_SECRET",
}


@pytest.fixture(scope="module", autouse=True)
def _schemas_read_once() -> Iterator[None]:
    """kubernetes-validate reads and parses a kind's schema and the 1 MB of definitions they
    share again for every object it checks: most of its time. They are the same files each
    time, so each is read once here; what is checked against them does not change."""
    utils = kubernetes_validate.utils
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(utils, "schema_contents", functools.cache(utils.schema_contents))
        patch.setattr(utils, "all_versions", functools.cache(utils.all_versions))
        yield


@pytest.fixture(scope="module")
def helm() -> Path:
    return helm_binary()


def _helm(helm: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=60, check=False
    )


def _template(helm: Path, *values: Path) -> subprocess.CompletedProcess:
    """`helm template` of the chart as release `villages`, with these value files in order."""
    files = [arg for path in values for arg in ("--values", str(path))]
    return _helm(
        helm,
        "template",
        "villages",
        str(CHART),
        "--namespace",
        "villagelink",
        "--kube-version",
        KUBERNETES_VERSIONS[0],
        *files,
    )


@pytest.fixture(scope="module")
def rendered(helm: Path) -> dict[str, list[dict]]:
    """Each value set's objects, rendered once for every test of this module."""
    objects = {}
    for name in VALUE_SETS:
        result = _template(helm, CHART / "ci" / f"{name}-values.yaml")
        assert result.returncode == 0, result.stderr
        objects[name] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return objects


def _named(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = (o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)
    return found


def _pod_specs(objects: list[dict]) -> dict[str, dict]:
    return {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]
        for o in objects
        if o["kind"] in ("Deployment", "Job")
    }


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_lint_strict_is_clean(helm, value_set):
    result = _helm(
        helm,
        "lint",
        "--strict",
        str(CHART),
        "--values",
        str(CHART / "ci" / f"{value_set}-values.yaml"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_object_is_valid_kubernetes(rendered, value_set):
    problems, custom = [], set()
    for obj in rendered[value_set]:
        kind = (obj["apiVersion"], obj["kind"])
        if kind in CUSTOM_KINDS:
            custom.add(kind)
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{version} {obj['kind']}/{obj['metadata']['name']}: {error}")
    assert problems == []
    # The ServiceMonitor is the only object left unchecked, and only where it is switched on.
    assert custom == (CUSTOM_KINDS if value_set == "everything-on" else set())


def test_each_value_set_renders_what_it_switches_on(rendered):
    kinds = {name: {o["kind"] for o in objects} for name, objects in rendered.items()}
    optional = {"Ingress", "HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor"}
    assert kinds["minimal"] & optional == set()
    assert kinds["production"] & optional == {"Ingress", "HorizontalPodAutoscaler"}
    assert kinds["everything-on"] >= optional | {"PodDisruptionBudget", "Secret", "ConfigMap"}
    # Secrets managed outside the chart: the chart makes none, the pods read the named one.
    assert "Secret" not in kinds["production"]
    for spec in _pod_specs(rendered["production"]).values():
        (secret,) = (
            s["secretRef"]["name"] for s in spec["containers"][0]["envFrom"] if "secretRef" in s
        )
        assert secret == "villagelink-env"


def test_one_worker_deployment_per_queue(rendered):
    objects = rendered["production"]
    workers = {
        o["metadata"]["labels"]["villagelink/queue"]: o
        for o in objects
        if o["kind"] == "Deployment" and "villagelink/queue" in o["metadata"]["labels"]
    }
    assert set(workers) == set(QUEUES)
    wanted = yaml.safe_load((CHART / "ci" / "production-values.yaml").read_text())["workers"]
    for queue, deployment in workers.items():
        assert deployment["spec"]["replicas"] == wanted[queue]["replicas"]
        assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == [
            "worker",
            "--queue",
            queue,
        ]


def test_roles_probes_and_hooks(rendered):
    objects = rendered["minimal"]
    specs = _pod_specs(objects)
    gateway = specs["villages-villagelink-gateway"]["containers"][0]
    assert gateway["args"] == ["gateway"]
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    live = specs["villages-villagelink-live"]["containers"][0]
    assert live["args"] == ["live"]
    assert live["readinessProbe"]["httpGet"]["path"] == "/healthz"
    scheduler = _named(objects, "Deployment", "villages-villagelink-scheduler")
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate"
    assert scheduler["spec"]["template"]["spec"]["containers"][0]["args"] == ["scheduler"]
    # The migration runs before the release's pods, from a ConfigMap and Secret that exist
    # by then: hooks made before it (a lower weight).
    job = _named(objects, "Job", "villages-villagelink-migration")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate", "--jobs", "4"]
    for kind in ("ConfigMap", "Secret"):
        made_before = _named(objects, kind, "villages-villagelink-migration")["metadata"]
        assert made_before["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert int(made_before["annotations"]["helm.sh/hook-weight"]) < int(
            job["metadata"]["annotations"]["helm.sh/hook-weight"]
        )


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_pod_non_root_with_a_read_only_root(rendered, value_set):
    for name, spec in _pod_specs(rendered[value_set]).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["automountServiceAccountToken"] is False, name
        (container,) = spec["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
        assert container["resources"]["requests"], name
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}} in spec["volumes"], name


def test_every_setting_the_platform_reads_is_configured(rendered):
    """The ConfigMap and Secret carry every variable platform/settings.py reads, under its
    own name: the settings are read through a mapping that notes each name asked for."""

    asked: set[str] = set()

    class Noting(dict):
        def get(self, name, default=None):
            asked.add(name)
            return super().get(name, default)

    load_settings(Noting())
    objects = rendered["everything-on"]
    config = _named(objects, "ConfigMap", "villages-villagelink")["data"]
    secret = _named(objects, "Secret", "villages-villagelink")["data"]
    assert {"DATABASE_URL", "S3_ENDPOINT", "GUNICORN_WORKERS"} <= asked
    assert asked - EMBEDDED_ONLY <= set(config) | set(secret)
    assert set(secret) == SECRET_NAMES
    assert set(config).isdisjoint(SECRET_NAMES)
    # What the pods get is what the platform parses: the settings load from these values.
    settings = load_settings(
        {**config, **{k: base64.b64decode(v).decode() for k, v in secret.items()}}
    )
    assert settings.max_body_bytes == 2097152
    assert settings.webhook_retry_delays == (10, 60, 600)
    assert settings.console_dist == Path("/opt/villagelink/console")
    assert settings.production and settings.s3_endpoint == "https://s3.example.org"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"workers": {"sync": {"replicas": "three"}}},
            "at '/workers/sync/replicas': got string, want integer",
        ),
        (
            {"workers": {"sinc": {"replicas": 1, "resources": {}}}},
            "additional properties 'sinc' not allowed",
        ),
        (
            {"config": {"GRAPHQL_MAX_DEPTH": 0}},
            "at '/config/GRAPHQL_MAX_DEPTH': minimum: got 0, want 1",
        ),
        (
            {"podSecurityContext": {"runAsNonRoot": False}},
            "at '/podSecurityContext/runAsNonRoot': value must be true",
        ),
        (
            {"config": {"KEYCLOAK_URL": ""}},
            "config.KEYCLOAK_URL or config.OIDC_ISSUER is required in production",
        ),
    ],
    ids=["type", "unknown-queue", "range", "root", "identity"],
)
def test_wrong_values_are_refused_with_a_clear_message(helm, tmp_path, values, message):
    wrong = tmp_path / "wrong-values.yaml"
    wrong.write_text(yaml.safe_dump(values))
    result = _template(helm, CHART / "ci" / "minimal-values.yaml", wrong)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.worker_process
@pytest.mark.timeout(60)
def test_the_gateway_role_serves_the_api_and_the_consoles(settings, db, tmp_path):
    """`villagelink gateway` as a gateway pod runs it: gunicorn becomes the command's own
    process (so the pod's SIGTERM reaches it), answers /readyz, serves the consoles from
    CONSOLE_DIST and counts no samples of a previous container's processes."""
    dist = tmp_path / "console"
    dist.mkdir()
    (dist / "index.html").write_text("<title>五村联动</title>", encoding="utf-8")
    stale = tmp_path / "var" / "prometheus" / "counter_1.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by the previous container")
    port = free_port()
    gateway = subprocess.Popen(
        [str(Path(sys.executable).parent / "villagelink"), "gateway"],
        env={
            **os.environ,
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "VILLAGELINK_ENV": "test",
            "VILLAGELINK_VAR_DIR": str(tmp_path / "var"),
            "VILLAGELINK_PORT": str(port),
            "CONSOLE_DIST": str(dist),
            "GUNICORN_WORKERS": "1",
            "GUNICORN_THREADS": "2",
        },
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "gateway.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"{url}/readyz"):
            assert gateway.poll() is None, (tmp_path / "gateway.log").read_text()
            assert time.monotonic() < deadline, "the gateway was not ready within 30 s"
            time.sleep(0.2)
        assert "gunicorn" in " ".join(psutil.Process(gateway.pid).cmdline())
        console = requests.get(f"{url}/console/", timeout=5)
        assert console.status_code == 200
        assert "五村联动" in console.text
        assert not stale.exists()
    finally:
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=30) == 0


def _answers(url: str) -> bool:
    # The master listens before its worker has built the app: the first answers wait for it.
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False
