"""The one settings object (environment prefix ``SCULPT_``), read once per process."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCULPT_", env_file=None, extra="ignore")

    home: Path = Field(Path(".sculpt"), description="Folder for the embedded mode's database, broker and artifacts.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite under home.")
    broker_url: str | None = Field(None, description="Celery broker URL; default: filesystem transport under home.")
    artifact_root: str | None = Field(
        None, description="Where files and checkpoints live: a folder or s3://bucket/prefix; default: home/artifacts.")
    s3_endpoint_url: str | None = Field(
        None, description="Endpoint of an S3-compatible store (MinIO, …); default: AWS. Credentials: AWS_* env.")

    # Upload limits, enforced while streaming.
    max_upload_bytes: int = 64 * 1024 * 1024
    max_upload_lines: int = 200_000
    max_line_bytes: int = 1024 * 1024
    max_json_depth: int = 32
    max_request_bytes: int = Field(1024 * 1024, description="Largest JSON request body.")

    # Registered base models must resolve inside one of these roots; hub ids as allowed below.
    model_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    allow_hub_models: bool = Field(True, description="false: no hub id anywhere, whatever the patterns say.")
    allowed_hub_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated fnmatch patterns of hub ids a lineage may start from "
                                          "(e.g. 'Qwen/*'); default: any on loopback, none in server mode.")
    trust_remote_code: bool = False

    # Auth and limits.
    require_auth: bool | None = Field(
        None, description="Every /v1 request needs a valid API key; default: when the API is bound to a "
                          "non-loopback host. false: open while no key exists, wherever it is bound.")
    bind_host: str | None = Field(None, description="Set by `sculpt serve` for its API processes: the host it binds.")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated host names an open server (no key) answers to besides "
                                          "localhost, IP addresses, its bind host and the machine's name.")
    rate_limit_per_minute: int = 600
    max_queued_jobs: int = 1000

    # Webhooks: jobs may name a URL on one of these hosts; empty list (the default) = webhooks refused.
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated host names (or host:port) webhooks may go to.")
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated CIDRs outside the public internet (loopback, private, "
                                          "link-local) that an allowed host name may resolve to.")
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key that signs every delivery.")
    webhook_attempts: int = Field(4, ge=1, le=10)
    webhook_backoff_seconds: float = Field(1.0, ge=0.0, description="First retry delay; doubles each time.")
    webhook_timeout_seconds: float = Field(5.0, gt=0.0)

    # Logs: every process writes one line per event in one format; "json": JSON lines for log shippers.
    log_format: Literal["text", "json"] = "text"

    # Worker.
    lease_seconds: int = 120
    heartbeat_seconds: int = 10
    worker_live_seconds: int = Field(
        60, ge=1, description="A worker not heard from for this long (it renews its row every heartbeat_seconds) "
                              "counts as gone: jobs on queues only it served say they wait for a worker.")
    job_time_limit_seconds: int = 24 * 3600
    reconcile_seconds: int = 60
    cache_max_bytes: int = Field(
        50 * 1024**3, ge=0, description="Disk the worker's download cache (SCULPT_HOME/cache) may hold before the "
                                       "least recently used entries go; 0: no limit. Only with an object store.")
    broker_visibility_timeout: int | None = Field(
        None, description="Redis redelivery timeout; default: the job time limit plus an hour.")
    device: str | None = Field(None, description="torch device for training; default: cuda when present, else cpu.")
    # A lineage's versions keep their base's dtype, so this is also the dtype a GGUF lineage's versions store.
    gguf_dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="The dtype a GGUF base is dequantized to (once per file and dtype); its versions "
                               "keep it. Training holds float32 master weights whatever it is.")
    max_devices: int | None = Field(
        None, ge=1, description="Most processes one job may train with (continual.devices); default: the GPUs the "
                                "worker sees from its device on, 1 without CUDA. On CPU, more run as gloo processes.")
    # Inference (POST /v1/chat/completions, /v1/completions): run by `sculpt inference` processes.
    inference_max_tokens: int = Field(1024, ge=1, description="Largest max_tokens a request may ask for.")
    inference_default_max_tokens: int = Field(
        256, ge=1, description="max_tokens when a request gives none (at most inference_max_tokens).")
    inference_max_n: int = Field(8, ge=1, description="Most choices (n) one request may ask for.")
    inference_memory_bytes: int = Field(
        8 * 1024**3, ge=0, description="Memory an inference process may hold in loaded versions; the least "
                                       "recently used go first (the one in use always stays).")
    inference_max_batch: int = Field(32, ge=1, description="Most sequences an inference process decodes at once.")
    inference_batch_wait_ms: float = Field(
        3.0, ge=0.0, description="How long a new batch waits for requests arriving together.")
    inference_heartbeat_seconds: float = Field(
        2.0, gt=0.0, description="How often an inference process renews its registration; it counts as gone "
                                 "after three missed beats.")
    inference_timeout_seconds: float = Field(
        120.0, gt=0.0, description="Longest the API waits for the next token from an inference process before "
                                   "answering 503.")
    inference_device: str | None = Field(None, description="torch device for inference; default: cuda when "
                                                           "present, else cpu.")
    # Fault injection for crash tests: hold the job this long when it reaches a phase, or "commit"
    # (its checkpoint stored, its version row not yet written), or "deleting" (a checkpoint being
    # removed, its first file gone).
    fault_pause_at: str | None = None
    fault_pause_seconds: float = 60.0

    @field_validator("model_roots", mode="before")
    @classmethod
    def _split_roots(cls, value):
        if isinstance(value, str):
            return [p for p in value.split(":") if p]
        return value

    @field_validator("webhook_allowed_hosts", "webhook_allowed_networks", "allowed_hub_models", "allowed_hosts",
                     mode="before")
    @classmethod
    def _split_commas(cls, value):
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @field_validator("webhook_allowed_hosts", "allowed_hosts")
    @classmethod
    def _lower_hosts(cls, value: list[str]) -> list[str]:
        return [h.lower() for h in value]

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad entry
        return value

    @property
    def exposed(self) -> bool:
        """Served on a host other than loopback."""
        return self.bind_host is not None and not is_loopback(self.bind_host)

    @property
    def auth_required(self) -> bool:
        """Whether /v1 refuses requests without a valid key, however many keys exist (none: all refused)."""
        return self.require_auth if self.require_auth is not None else self.exposed

    @property
    def server_mode(self) -> bool:
        """Exposed or locked: hub ids only where allowed, local models only inside SCULPT_MODEL_ROOTS."""
        return self.exposed or self.auth_required

    @property
    def home_path(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_path / 'sculpt.db'}"

    @property
    def allowed_model_roots(self) -> list[Path]:
        """Where a registered local base model may live; default: SCULPT_HOME and the working directory,
        none in server mode (a server's working directory is nothing a client should read)."""
        roots = self.model_roots or ([] if self.server_mode else [self.home_path, Path.cwd()])
        return [Path(r).expanduser().resolve() for r in roots]

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def broker_folder(self) -> Path:
        return self.home_path / "broker"

    @property
    def resolved_artifact_root(self) -> Path | str:
        """The artifact folder, or the object-store URL (``s3://…``) unchanged."""
        if self.artifact_root and "://" in self.artifact_root:
            return self.artifact_root
        return Path(self.artifact_root).expanduser().resolve() if self.artifact_root else self.home_path / "artifacts"

    @property
    def is_embedded_broker(self) -> bool:
        return self.resolved_broker_url.startswith("filesystem")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache
def get_settings() -> Settings:
    return Settings()
