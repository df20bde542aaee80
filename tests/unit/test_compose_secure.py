"""compose.secure.yml cannot run here (no Docker): keep it consistent with the settings, the
principals and the material that services/devstack/compose_secrets.py makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from services.common.settings import Settings
from services.devstack import access, compose_secrets

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


class ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's merge tags (`!reset`, `!override`): the tagged value as it is."""


for tag in ("!reset", "!override"):
    ComposeLoader.add_constructor(tag, lambda loader, node: (
        loader.construct_mapping(node) if isinstance(node, yaml.MappingNode)
        else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else None))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.load((ROOT / "compose.secure.yml").read_text(), Loader=ComposeLoader)


def _secret_mounts(service: dict) -> list[tuple[str, str]]:
    """(folder of the volume, target) of each `dphp-secrets` mount; "" is the whole volume."""
    out = []
    for v in service.get("volumes") or []:
        if isinstance(v, str) and v.split(":")[0] == "dphp-secrets":
            out.append(("", v.split(":")[1]))
        elif isinstance(v, dict) and v.get("source") == "dphp-secrets":
            out.append(((v.get("volume") or {}).get("subpath", ""), v["target"]))
    return out


def _visible(compose: dict, root: Path) -> dict[str, set[str]]:
    """Each service's secret files (relative to the volume) as its mounts show them."""
    seen = {}
    for name, service in compose["services"].items():
        files = set()
        for folder, target in _secret_mounts(service):
            assert folder == "" or target == f"/secrets/{folder}", (name, folder, target)  # paths as written
            files |= {str(p.relative_to(root)) for p in (root / folder).rglob("*") if p.is_file()}
        seen[name] = files
    return seen


def test_each_container_sees_only_its_own_principals_secrets(compose, tmp_path) -> None:
    compose_secrets.write(tmp_path)
    seen = _visible(compose, tmp_path)
    ca = "public/ca.pem"
    own = lambda p, *f: {f"{p}/{x}" for x in f}  # noqa: E731
    assert seen == {
        "secrets": seen["secrets"],  # the generator: the whole volume
        "kafka": {*own("kafka", "server.properties", "broker.p12", "format.args", "cluster.id",
                       "admin-client.properties"), ca},
        "acls": {*own("acls", "admin-client.properties", "acls.sh"), ca},
        "postgres": own("postgres", "superuser.password"),
        "topics": {*own("dphp-admin", "kafka.password"), ca},
        "migrate": own("setup", "postgres.json"),
        **{n: {*own(f"dphp-{n}", "kafka.password", "db.password"), ca}
           for n in ("registrations", "movements", "meetings", "report", "operator")},
        "web": own("dphp_reader", "db.password"),
        "prometheus": set(),
        "grafana": own("grafana", "admin.password"),
    }
    assert {"store/stack.json", "store/ca.key"} <= seen["secrets"]
    # the administrators' passwords only where the broker, PostgreSQL or the set-up need them
    store = json.loads((tmp_path / "store" / "stack.json").read_text())

    def holders(password: str) -> set[str]:
        return {n for n, files in seen.items() if any(password.encode() in (tmp_path / f).read_bytes() for f in files)}

    assert holders(store["kafka"][access.ADMIN]) == {"secrets", "kafka", "acls", "topics"}
    assert holders(store["postgres"]["postgres"]) == {"secrets", "postgres", "migrate"}
    assert holders(store["postgres"][access.OWNER]) == {"secrets", "migrate", "operator"}
    assert holders(store["kafka"]["dphp-registrations"]) == {"secrets", "registrations"}
    for f in tmp_path.rglob("*"):
        if f.is_file() and f.parent.name != "public" and f.name != "cluster.id":
            assert f.stat().st_mode & 0o777 == 0o600, f


def test_the_services_run_unprivileged(compose) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in dockerfile if line.startswith("USER ")]
    assert users and users[-1] not in ("0", "root")
    assert [n for n, s in compose["services"].items() if str(s.get("user", "")) in ("0", "root")] == ["secrets"]


def test_only_the_web_and_monitoring_are_published_on_loopback_grafana_without_anonymous(compose) -> None:
    services = compose["services"]
    assert services["kafka"]["ports"] == [] and services["postgres"]["ports"] == []
    published = {n: s["ports"] for n, s in services.items() if s.get("ports")}
    assert published == {"web": ["127.0.0.1:8000:8000"], "prometheus": ["127.0.0.1:9090:9090"],
                         "grafana": ["127.0.0.1:3000:3000"]}
    grafana = services["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false" and "GF_AUTH_ANONYMOUS_ORG_ROLE" not in grafana
    assert grafana["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/secrets/grafana/admin.password"
    web = services["web"]["environment"]
    assert web["DPHP_DATABASE_URL"] == f"postgresql://{access.READER}@postgres:5432/dphp"
    assert web["DPHP_DATABASE_PASSWORD_FILE"] == f"/secrets/{access.READER}/db.password"
    assert services["postgres"]["volumes"] == [v for v in services["postgres"]["volumes"] if isinstance(v, dict)]


def test_the_development_compose_files_web_reads_as_the_reader_role() -> None:
    from services.devstack.services import READER_ROLE

    plain = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert plain["services"]["web"]["environment"]["DPHP_DATABASE_URL"].startswith(f"postgresql://{READER_ROLE}:")
    assert READER_ROLE in (ROOT / "infra" / "postgres" / "initdb" / "10-reader.sql").read_text()


def test_kafka_takes_only_the_generated_configuration(compose) -> None:
    services = compose["services"]
    assert services["kafka"]["environment"] == {}  # the base file's PLAINTEXT listeners are dropped
    assert "@/secrets/kafka/format.args" in services["kafka"]["command"][0]  # not $(cat ...): no argv
    assert services["postgres"]["environment"]["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert "POSTGRES_PASSWORD" not in services["postgres"]["environment"]


def test_each_service_has_its_own_principal_role_and_password_files(compose, tmp_path) -> None:
    compose_secrets.write(tmp_path)
    fields = {f"DPHP_{name.upper()}" for name in Settings.model_fields}
    for name in ("registrations", "movements", "meetings", "report", "operator", "topics"):
        env = compose["services"][name]["environment"]
        assert set(k for k in env if k.startswith("DPHP_")) <= fields, name
        principal = env["DPHP_KAFKA_SASL_USERNAME"]
        assert principal in (access.ADMIN, *access.PRINCIPALS)
        assert name in principal or name == "topics"
        assert env["DPHP_KAFKA_TLS_CA_FILE"] == "/secrets/public/ca.pem" and "DPHP_KAFKA_SASL_PASSWORD" not in env
        for key in ("DPHP_KAFKA_SASL_PASSWORD_FILE", "DPHP_DATABASE_PASSWORD_FILE"):
            if key in env:
                assert (tmp_path / Path(env[key]).relative_to("/secrets")).stat().st_mode & 0o777 == 0o600
        if "DPHP_DATABASE_URL" in env:
            assert env["DPHP_DATABASE_URL"].split("//")[1].split("@")[0] == access.DB_ROLE_OF[principal]
    props = dict(line.split("=", 1) for line in (tmp_path / "kafka" / "server.properties").read_text().splitlines())
    assert props["listeners"] == "SASL_SSL://kafka:9092,CONTROLLER://kafka:9093"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["ssl.truststore.location"] == "/secrets/public/ca.pem"
    assert props["ssl.keystore.location"] == "/secrets/kafka/broker.p12"
    assert "PLAINTEXT" not in props["listener.security.protocol.map"].replace("SASL_", "")
    assert (tmp_path / "acls" / "acls.sh").read_text().count("kafka-acls.sh") == len(access.acl_specs(Settings()))
