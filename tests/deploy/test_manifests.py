"""The deployment files agree with the services: probes, ports, env names, hardening.

No container engine or cluster runs in CI, so these checks are static: every file parses, the
probes and ports name what the services serve, and every environment variable a deployment sets
is documented in .env.example and read by that service's settings module (so a renamed setting
fails here instead of being silently ignored in production).
"""

from __future__ import annotations

import configparser
import importlib
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.servers import ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"

SERVICES = {
    "sso-server": {"package": "sso_service", "port": 8001, "compose": "sso", "env": "sso"},
    "contacts-server": {
        "package": "contacts_service",
        "port": 8002,
        "compose": "contacts",
        "env": "contacts",
    },
}
# Set by the images or read by shared/serve.py and the interpreter, not by the settings modules.
RUNTIME_ENV = {"PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "TMPDIR", "WEB_CONCURRENCY"}


# --------------------------------------------------------------------------- loading helpers


def load_yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s_documents() -> list[dict]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            documents.extend(load_yaml_documents(path))
    return documents


def k8s_objects(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == kind}


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def env_file_names(path: Path) -> set[str]:
    """Names assigned in an env file, commented-out examples included."""
    pattern = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)
    return set(pattern.findall(path.read_text()))


def documented_names() -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))


# The least each service's Settings.from_env accepts.
REQUIRED_ENV = {
    "sso_service": {"SSO_TOKEN_SECRET": "s" * 32, "SSO_INTROSPECTION_CLIENTS": "c:secret"},
    "contacts_service": {
        "CONTACTS_DATABASE_URL": "postgresql://u:p@127.0.0.1:5432/db",
        "CONTACTS_SSO_URL": "http://127.0.0.1:8001",
        "CONTACTS_SSO_CLIENT_ID": "c",
        "CONTACTS_SSO_CLIENT_SECRET": "secret",
    },
}


class _ReadRecorder(dict):
    """An environment that remembers every name looked up in it."""

    def __init__(self, values: dict[str, str]):
        super().__init__(values)
        self.names: set[str] = set()

    def get(self, name, default=None):
        self.names.add(name)
        return super().get(name, default)

    def __getitem__(self, name):
        self.names.add(name)
        return super().__getitem__(name)

    def __contains__(self, name):
        self.names.add(name)
        return super().__contains__(name)


def names_read_by_settings(package: str) -> set[str]:
    """Every variable the package's Settings.from_env looks up, itself or through shared.config."""
    settings = importlib.import_module(f"{package}.settings").Settings
    environ = _ReadRecorder(REQUIRED_ENV[package])
    settings.from_env(environ)
    return environ.names


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def bind_port(args: list[str]) -> int:
    return int(args[args.index("--bind") + 1].rsplit(":", 1)[1])


def container_port(container: dict, port: int | str) -> int:
    """Resolve a probe/target port (number or name) against the container's ports."""
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p.get("name") == port)


def deployment_containers(deployment: dict) -> list[dict]:
    spec = deployment["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def image_service(image: str) -> str:
    return image.rsplit("/", 1)[-1].split(":")[0]


# --------------------------------------------------------------------------- env names


def env_references() -> list[tuple[str, str, str]]:
    """(where, service, NAME) for every variable a deployment hands to a service."""
    refs: list[tuple[str, str, str]] = []
    services = compose()["services"]
    for service, facts in SERVICES.items():
        environment = services[facts["compose"]].get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        refs += [("compose", service, name) for name in environment]

    config_maps = k8s_objects("ConfigMap")
    secrets = {
        d["metadata"]["name"]: d
        for d in load_yaml_documents(K8S / "secrets.example.yaml")
        if d["kind"] == "Secret"
    }
    for deployment in k8s_objects("Deployment").values():
        for container in deployment_containers(deployment):
            service = image_service(container["image"])
            refs += [("k8s", service, item["name"]) for item in container.get("env", [])]
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    data = config_maps[source["configMapRef"]["name"]]["data"]
                else:
                    secret = secrets[source["secretRef"]["name"]]
                    data = {**secret.get("data", {}), **secret.get("stringData", {})}
                refs += [("k8s", service, name) for name in data]

    for service in SERVICES:
        env_file = unit(f"{service}.service")["Service"]["EnvironmentFile"]
        example = SYSTEMD / (Path(env_file).name + ".example")
        refs += [("systemd", service, name) for name in env_file_names(example)]
    return sorted(set(refs))


ENV_REFERENCES = env_references()


def test_every_deployment_hands_settings_to_both_services():
    for where in ("compose", "k8s", "systemd"):
        for service in SERVICES:
            assert any(r[0] == where and r[1] == service for r in ENV_REFERENCES), (where, service)


@pytest.mark.parametrize(
    ("where", "service", "name"), ENV_REFERENCES, ids=["-".join(r) for r in ENV_REFERENCES]
)
def test_env_name_is_documented_and_read_by_the_service(where, service, name):
    assert name in documented_names(), f"{name} ({where}) is missing from .env.example"
    package = SERVICES[service]["package"]
    assert name in names_read_by_settings(package), f"{package}/settings.py never reads {name}"


# --------------------------------------------------------------------------- Dockerfiles

DOCKERFILES = {
    "sso-server": DEPLOY / "docker" / "sso-server.Dockerfile",
    "contacts-server": DEPLOY / "docker" / "contacts-server.Dockerfile",
}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def final_stage(path: Path) -> list[tuple[str, str]]:
    steps = instructions(path)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_dockerfile_is_multi_stage_on_slim_python(service):
    steps = instructions(DOCKERFILES[service])
    stages = [rest for keyword, rest in steps if keyword == "FROM"]
    assert len(stages) >= 2
    args = dict(rest.split("=", 1) for keyword, rest in steps if keyword == "ARG" and "=" in rest)
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert any("--from=build" in rest for keyword, rest in final_stage(DOCKERFILES[service]))


@pytest.mark.parametrize(
    "path", [*DOCKERFILES.values(), DEPLOY / "demo" / "demo-provider.Dockerfile"], ids=str
)
def test_image_runs_as_a_non_root_user_with_a_healthcheck(path):
    stage = final_stage(path)
    users = [rest for keyword, rest in stage if keyword == "USER"]
    assert users, "no USER in the final stage"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert any(keyword == "HEALTHCHECK" for keyword, _ in stage)


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_image_healthcheck_entrypoint_and_port_match_the_service(service):
    facts = SERVICES[service]
    stage = dict(final_stage(DOCKERFILES[service]))
    assert f"http://127.0.0.1:{facts['port']}/healthz" in stage["HEALTHCHECK"]
    assert "curl" not in stage["HEALTHCHECK"] and "wget" not in stage["HEALTHCHECK"]
    assert stage["EXPOSE"] == str(facts["port"])
    assert yaml.safe_load(stage["ENTRYPOINT"]) == ["python", "-m", facts["package"]]
    cmd = yaml.safe_load(stage["CMD"])
    assert cmd[0] == "serve" and bind_port(cmd) == facts["port"]
    env_names = set(re.findall(r"([A-Z][A-Z0-9_]*)=", stage["ENV"]))
    assert env_names <= RUNTIME_ENV
    assert "TMPDIR=/tmp" in stage["ENV"] and "/tmp" in stage["VOLUME"]


def test_dockerignore_keeps_the_context_to_what_the_images_copy():
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("**") :][:1] == ["**"]
    for needed in ("!pyproject.toml", "!README.md", "!LICENSE", "!shared/", "!sso_service/"):
        assert needed in lines
    assert "!contacts_service/" in lines and "!deploy/demo/demo_provider.py" in lines


# --------------------------------------------------------------------------- compose


def test_compose_has_every_part_gated_on_health():
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "demo-provider", "sso", "contacts"}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services
            assert condition == {"condition": "service_healthy"}, (name, dependency)
    assert set(services["sso"]["depends_on"]) == {"redis", "demo-provider"}
    assert set(services["contacts"]["depends_on"]) == {"postgres", "sso"}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_compose_service_ports_and_healthcheck_match(service):
    facts = SERVICES[service]
    entry = compose()["services"][facts["compose"]]
    port = facts["port"]
    assert bind_port(entry["command"]) == port
    assert entry["ports"] == [f"127.0.0.1:{port}:{port}"]
    probe = " ".join(entry["healthcheck"]["test"])
    assert re.search(rf"http://127\.0\.0\.1:{port}/(healthz|readyz)\b", probe)
    assert entry["build"]["dockerfile"] == f"deploy/docker/{service}.Dockerfile"
    assert (DEPLOY / entry["build"]["context"] / entry["build"]["dockerfile"]).is_file()
    assert entry["read_only"] is True and entry["tmpfs"] == ["/tmp"]
    assert entry["cap_drop"] == ["ALL"]


def test_compose_wires_contacts_to_sso_and_its_stores():
    services = compose()["services"]
    contacts = services["contacts"]["environment"]
    sso = services["sso"]["environment"]
    assert contacts["CONTACTS_SSO_URL"] == "http://sso:8001"
    assert "@postgres:5432/" in contacts["CONTACTS_DATABASE_URL"]
    assert sso["SSO_REDIS_URL"].startswith("redis://redis:6379/")
    client_secret = contacts["CONTACTS_SSO_CLIENT_SECRET"]
    assert (
        sso["SSO_INTROSPECTION_CLIENTS"] == f"{contacts['CONTACTS_SSO_CLIENT_ID']}:{client_secret}"
    )


def test_compose_clouds_file_is_a_valid_sso_clouds_file():
    from sso_service.definitions import load_clouds_file

    mount = next(v for v in compose()["services"]["sso"]["volumes"] if "clouds" in v)
    source, target = mount.split(":")[:2]
    assert compose()["services"]["sso"]["environment"]["SSO_CLOUDS_FILE"] == target
    clouds = load_clouds_file(str(DEPLOY / source))
    assert "DEMO" in clouds


# --------------------------------------------------------------------------- Kubernetes


def test_k8s_manifests_parse_and_cover_both_services():
    kinds = {(d["kind"], d["metadata"]["name"]) for d in k8s_documents()}
    for service in SERVICES:
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
            assert (kind, service) in kinds
    externals = k8s_objects("Service")
    assert externals["redis"]["spec"]["type"] == "ExternalName"
    assert externals["postgres"]["spec"]["type"] == "ExternalName"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_k8s_probes_and_ports_match_the_service(service):
    port = SERVICES[service]["port"]
    deployment = k8s_objects("Deployment")[service]
    container = next(
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == service
    )
    assert container["args"][0] == "serve" and bind_port(container["args"]) == port
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert readiness["httpGet"]["path"] == "/readyz"
    assert liveness["httpGet"]["path"] == "/healthz"
    for probe in (readiness, liveness, container["startupProbe"]):
        assert container_port(container, probe["httpGet"]["port"]) == port

    k8s_service = k8s_objects("Service")[service]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert k8s_service["spec"]["selector"].items() <= labels.items()
    (service_port,) = k8s_service["spec"]["ports"]
    assert service_port["port"] == port
    assert container_port(container, service_port["targetPort"]) == port


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_k8s_pods_are_locked_down(service):
    pod = k8s_objects("Deployment")[service]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    for container in pod.get("initContainers", []) + pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/tmp"] in tmp_volumes
        assert "memory" in container["resources"]["limits"]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_k8s_scaling_objects_target_the_deployment(service):
    deployment = k8s_objects("Deployment")[service]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    hpa = k8s_objects("HorizontalPodAutoscaler")[service]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": service,
    }
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    pdb = k8s_objects("PodDisruptionBudget")[service]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_k8s_contacts_migrates_before_serving():
    pod = k8s_objects("Deployment")["contacts-server"]["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["args"] == ["migrate"]
    assert init["image"] == pod["containers"][0]["image"]
    assert init["envFrom"] == pod["containers"][0]["envFrom"]


def test_k8s_contacts_reaches_sso_through_its_service():
    config = k8s_objects("ConfigMap")["contacts-server-config"]["data"]
    assert config["CONTACTS_SSO_URL"] == "http://sso-server:8001"


# What the Ingress publishes to the internet: the public API only. Introspection is
# service-to-service, /metrics, /healthz and /readyz are for the cluster, /openapi.json is not
# needed by clients, and admin routes are for operators inside the cluster.
PUBLIC_PATHS = {
    "sso-server": ["/v1/tokens", "/v1/revoke"],
    "contacts-server": [
        "/v1/devices",
        "/v1/devices/phone",
        "/v1/devices/phone/contacts",
        "/v1/devices/phone/checksums",
        "/v1/devices/phone/smart-contacts",
        "/v1/devices/phone/events",
    ],
}
PRIVATE_PATHS = [
    "/",
    "/metrics",
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/static/x",
    "/v1",
    "/v1/",
    "/v1/introspect",
    "/v1/tokens/x",
    "/v1/tokensx",
    "/v1/devicesx",
    "/v1/admin",
    "/v1/admin/accounts/revoke",
    "/v1/admin/accounts/export",
    "/v1/admin/accounts/erase",
    "/v1/admin/clouds/C1/stats",
]


def ingress_backend(path: str) -> set[str]:
    """The backend Services an Ingress routes `path` to, on any host, by the Kubernetes
    matching rules (Exact: the whole path; Prefix: whole `/`-separated elements)."""
    backends = set()
    for ingress in k8s_objects("Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for entry in rule["http"]["paths"]:
                route, kind = entry["path"], entry["pathType"]
                elements = route.rstrip("/").split("/")
                if (kind == "Exact" and path == route) or (
                    kind == "Prefix" and path.rstrip("/").split("/")[: len(elements)] == elements
                ):
                    backends.add(entry["backend"]["service"]["name"])
    return backends


def test_ingress_publishes_only_the_public_api():
    ingresses = k8s_objects("Ingress")
    assert ingresses, "no Ingress"
    for ingress in ingresses.values():
        spec = ingress["spec"]
        assert "defaultBackend" not in spec
        # Matching must mean what ingress_backend() says: no regex or rewriting extensions.
        annotations = ingress["metadata"].get("annotations", {})
        assert not any(
            "regex" in key or "rewrite" in key or "snippet" in key for key in annotations
        )
        for rule in spec["rules"]:
            assert rule.get("host"), "a rule without a host catches every host"
            for entry in rule["http"]["paths"]:
                assert entry["pathType"] in ("Exact", "Prefix"), entry
                assert entry["path"] != "/", entry
    for service, paths in PUBLIC_PATHS.items():
        for path in paths:
            assert ingress_backend(path) == {service}, path
    for path in PRIVATE_PATHS:
        assert ingress_backend(path) == set(), f"{path} is published"


def test_ingress_publishes_every_contacts_api_route_and_nothing_else():
    """Against the Contacts app's own routes, so a new route is a decision made here."""
    from contacts_service.app import create_app

    app = create_app(
        {
            "CONTACTS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            "CONTACTS_SSO_URL": "http://127.0.0.1:1",
            "CONTACTS_SSO_CLIENT_ID": "id",
            "CONTACTS_SSO_CLIENT_SECRET": "secret",
        }
    )
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"sample", rule.rule)
        public = path.startswith("/v1/") and not path.startswith("/v1/admin")
        assert ingress_backend(path) == ({"contacts-server"} if public else set()), path


def test_kustomization_lists_every_manifest_but_the_secret_example():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests - {"secrets.example.yaml"}


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed")
def test_kustomize_renders_offline():
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, check=True
    ).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    assert {d["metadata"].get("namespace") for d in documents if d["kind"] != "Namespace"} == {
        "contact-sync"
    }
    images = {
        c["image"] for d in documents if d["kind"] == "Deployment" for c in deployment_containers(d)
    }
    assert images == {"contact-sync/sso-server:0.1.0", "contact-sync/contacts-server:0.1.0"}


# --------------------------------------------------------------------------- systemd

HARDENING = {
    "DynamicUser": "yes",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter": "@system-service",
}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_systemd_unit_is_hardened_and_runs_the_binary(service):
    section = unit(f"{service}.service")["Service"]
    for key, value in HARDENING.items():
        assert section.get(key) == value, key
    command = shlex.split(section["ExecStart"])
    assert command[:2] == [f"/usr/local/bin/{service}", "serve"]
    assert bind_port(command) == SERVICES[service]["port"]
    assert section["EnvironmentFile"] == f"/etc/contact-sync/{SERVICES[service]['env']}.env"
    assert (SYSTEMD / f"{SERVICES[service]['env']}.env.example").is_file()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_systemd_analyze_accepts_the_unit(service):
    result = subprocess.run(
        ["systemd-analyze", "verify", str(SYSTEMD / f"{service}.service")],
        capture_output=True,
        text=True,
    )
    # The binary is not installed on a build machine; every other complaint is a defect.
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line
    ]
    assert complaints == []
