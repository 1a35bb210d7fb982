"""docker-compose.yml and the Dockerfile agree with what the code reads (no Docker engine here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from app.cli.main import build_parser
from app.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OURS = {name: svc for name, svc in SERVICES.items() if "build" in svc}


def test_the_stack_has_every_service_the_design_names():
    assert {"postgres", "redis", "migrate", "api", "worker", "inference"} <= set(SERVICES)
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ("postgres", "redis", "api"):
        assert "healthcheck" in SERVICES[name], name
    for name in ("api", "worker", "inference"):
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", sorted(OURS))
def test_each_command_is_one_the_cli_accepts(name):
    command = OURS[name]["command"]
    assert command[0] == "sculpt"
    build_parser().parse_args(command[1:])  # exits (fails the test) on an unknown sub-command or flag


@pytest.mark.parametrize("name", sorted(OURS))
def test_each_environment_variable_is_a_setting(name):
    fields = {f"SCULPT_{field.upper()}" for field in Settings.model_fields}
    environment = OURS[name]["environment"]
    sculpt_vars = {key for key in environment if key.startswith("SCULPT_")}
    assert sculpt_vars <= fields, sculpt_vars - fields
    assert {"SCULPT_DATABASE_URL", "SCULPT_BROKER_URL", "SCULPT_ARTIFACT_ROOT"} <= sculpt_vars
    assert environment["SCULPT_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert environment["SCULPT_BROKER_URL"].startswith("redis://")


@pytest.mark.parametrize("name", ["api", "worker", "inference"])
def test_the_artifact_volume_is_mounted_where_the_settings_point(name):
    service = OURS[name]
    root = service["environment"]["SCULPT_ARTIFACT_ROOT"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
    assert mounts.get(root) == "artifacts"
    assert "artifacts" in COMPOSE["volumes"]
    model_roots = service["environment"]["SCULPT_MODEL_ROOTS"].split(":")
    assert all(root in mounts for root in model_roots)


def test_the_worker_reserves_a_gpu_and_runs_one_job_per_process():
    worker = SERVICES["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert worker["environment"]["CUDA_VISIBLE_DEVICES"] == "0"


def test_inference_runs_on_a_gpu_and_is_reached_only_over_the_compose_network():
    inference = SERVICES["inference"]
    assert inference["build"]["target"] == "worker"  # torch, like the workers
    devices = inference["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "ports" not in inference  # the API reaches it on the network; nothing publishes it
    args = build_parser().parse_args(inference["command"][1:])
    assert args.host == "0.0.0.0" and args.port > 0


def test_the_dockerfile_builds_an_api_without_torch_and_a_worker_with_it():
    text = (ROOT / "Dockerfile").read_text()
    stages = dict(re.findall(r"^FROM \S+ AS (\w+)\n(.*?)(?=^FROM |\Z)", text, flags=re.MULTILINE | re.DOTALL))
    assert {"api", "worker"} <= set(stages)
    assert "torch" not in stages["api"].lower()
    assert "[worker,real]" in stages["worker"] and "TORCH_SPEC" in stages["worker"]
    for target in ("api", "worker"):
        command = json.loads(re.search(r"^CMD (.*)$", stages[target], flags=re.MULTILINE).group(1))
        build_parser().parse_args(command[1:])


def _commented_s3_wiring() -> dict[str, str]:
    """The environment lines the compose file says to uncomment for artifacts on MinIO."""
    text = (ROOT / "docker-compose.yml").read_text()
    return dict(re.findall(r"^#\s+((?:SCULPT|AWS)_\w+):\s*(\S+)$", text, flags=re.MULTILINE))


def test_the_commented_s3_wiring_reaches_the_minio_service_and_its_bucket():
    wiring = _commented_s3_wiring()
    fields = {f"SCULPT_{field.upper()}" for field in Settings.model_fields}
    assert {key for key in wiring if key.startswith("SCULPT_")} <= fields
    root = wiring["SCULPT_ARTIFACT_ROOT"]
    assert root.startswith("s3://")
    endpoint = urlparse(wiring["SCULPT_S3_ENDPOINT_URL"])
    minio, bucket_job = SERVICES[endpoint.hostname], SERVICES["minio-bucket"]
    assert f":{endpoint.port}" in minio["command"]
    assert f"/{root.removeprefix('s3://').split('/')[0]}" in " ".join(bucket_job["command"])
    assert wiring["AWS_ACCESS_KEY_ID"] == minio["environment"]["MINIO_ROOT_USER"]
    assert wiring["AWS_SECRET_ACCESS_KEY"] == minio["environment"]["MINIO_ROOT_PASSWORD"]
    assert bucket_job["depends_on"]["minio"]["condition"] == "service_healthy" and "healthcheck" in minio
    for name in ("api", "worker"):  # they wait for the bucket when the s3 profile is on, and only then
        assert OURS[name]["depends_on"]["minio-bucket"] == {"condition": "service_completed_successfully",
                                                            "required": False}
