"""One typed settings object for every cinesense module.

Values come from environment variables prefixed ``CINESENSE_`` (nested groups use a double
underscore: ``CINESENSE_TRAIN__EPOCHS=3``) or from a ``.env`` file. Nothing else in the
package reads the environment.
"""

from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cinesense.errors import SettingsError

# The Naver movie review corpus (CC0) lives as per-movie JSON files in e9t/nsmc; the
# archive of a pinned commit is the reproducible download.
NSMC_COMMIT = "b6232e69290a826104357381560e18adbad23473"
NSMC_ARCHIVE_URL = f"https://github.com/e9t/nsmc/archive/{NSMC_COMMIT}.tar.gz"


class DataSettings(BaseModel):
    corpus_url: str = Field(NSMC_ARCHIVE_URL, description="Archive of the Naver review corpus.")
    corpus_sha256: str | None = Field(
        None,
        description="Expected SHA-256 of the downloaded archive. When unset, the first "
        "download records its checksum and later reads verify against that record.",
    )
    download_timeout_s: float = Field(60.0, gt=0)
    corpus_files: list[Path] = Field(
        default_factory=list,
        description="Review files the training pipeline (the Airflow DAGs) builds datasets "
        "from, as a JSON list. Empty: the downloaded Naver corpus in CINESENSE_HOME/corpus "
        "when present, else the sample bundled with the package.",
    )
    negative_max_rating: int = Field(4, ge=1, le=10, description="Ratings <= this are negative.")
    positive_min_rating: int = Field(9, ge=1, le=10, description="Ratings >= this are positive.")
    validation_fraction: float = Field(0.1, gt=0, lt=0.5)
    test_fraction: float = Field(0.1, gt=0, lt=0.5)
    min_text_chars: int = Field(1, ge=1)
    seed: int = 13


class PretrainSettings(BaseModel):
    # The fields named in cinesense.options.OPTIONS are also CLI options and DAG Params:
    # their title, description and bounds are what a person sees there.
    preset: Literal["tiny", "small"] = Field(
        "small",
        title="Model size",
        description="'small' for real use; 'tiny' builds in seconds (demos, tests).",
    )
    vocab_size: int | None = Field(None, description="Overrides the preset's vocabulary size.")
    max_length: int = Field(128, ge=16, le=512)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(5e-4, gt=0)
    epochs: float = Field(1.0, gt=0, le=100, title="Epochs", description="Passes over the text.")
    max_steps: int | None = Field(None, ge=1)
    max_minutes: float | None = Field(
        None,
        gt=0,
        le=2880,
        title="Time budget (minutes)",
        description="Stop and save after this long.",
    )
    mlm_probability: float = Field(0.15, gt=0, lt=1)
    whole_word_mask: bool = Field(
        False,
        description="Mask every piece of a word together (a harder task for longer runs; "
        "the tiny preset learns too little from it in a few epochs).",
    )
    checkpoint_every_minutes: float = Field(
        10.0,
        gt=0,
        description="Save a resumable checkpoint this often; a rerun with the same data and "
        "settings continues from it (raise max_minutes to train longer).",
    )
    bf16: bool = Field(
        False,
        title="bfloat16",
        description="Compute the forward pass in bfloat16 where the CPU does so natively "
        "(AVX512-BF16 or AMX; float32 elsewhere): about 1.5x faster training there "
        "(benchmarks/RESULTS.md, precision).",
    )
    warmup_fraction: float = Field(0.05, ge=0, lt=1)
    seed: int = 13


class TrainSettings(BaseModel):
    base_model: str = Field(
        "self-built",
        min_length=1,
        title="Base model",
        description="'self-built' (the platform's own base in models/base), a local model "
        "directory, or a Hugging Face hub id such as klue/bert-base.",
    )
    max_length: int = Field(128, ge=16, le=512)
    batch_size: int = Field(64, ge=1)
    eval_batch_size: int = Field(256, ge=1)
    learning_rate: float | None = Field(
        None,
        gt=0,
        le=0.1,
        title="Learning rate",
        description="Peak learning rate. Default: by model width (see "
        "finetune.default_learning_rate).",
    )
    weight_decay: float = Field(0.01, ge=0)
    epochs: float = Field(
        3.0, gt=0, le=100, title="Epochs", description="Passes over the training reviews."
    )
    max_steps: int | None = Field(None, ge=1)
    max_minutes: float | None = Field(
        None,
        gt=0,
        le=1440,
        title="Time budget (minutes)",
        description="Stop training after this long and keep the best checkpoint.",
    )
    max_train_samples: int | None = Field(
        None,
        ge=1,
        title="Max training samples",
        description="Train on a random subset of this many reviews. Default: all.",
    )
    eval_every_steps: int = Field(500, ge=1)
    early_stopping_patience: int = Field(3, ge=1)
    wide_head_epochs: int = Field(
        1,
        ge=0,
        le=50,
        title="Wide n-gram head epochs",
        description="After BERT, train a hashed token n-gram head beside it for this many "
        "passes over all training reviews; it is kept only if it helps on validation "
        "reviews. 0: BERT alone.",
    )
    bf16: bool = Field(
        False,
        title="bfloat16",
        description="Compute the forward pass in bfloat16 where the CPU does so natively "
        "(AVX512-BF16 or AMX; float32 elsewhere): about 1.5x faster training there "
        "(benchmarks/RESULTS.md, precision).",
    )
    warmup_fraction: float = Field(0.06, ge=0, lt=1)
    seed: int = 13
    shuffle_seed: int | None = Field(
        None,
        description="Seed of the order the training reviews are read in (default: seed). "
        "A second fine-tuning stage that stops within one epoch reads other reviews first "
        "under another shuffle seed; the validation sample stays that of seed.",
    )
    average_decay: float | None = Field(
        None,
        gt=0,
        lt=1,
        title="Weight averaging decay",
        description="Keep an exponential moving average of the weights with this decay per "
        "step (0.999: about the last 1,000 steps) and validate, keep and save the average "
        "instead of the latest weights. Default: off.",
    )
    checkpoint_every_minutes: float | None = Field(
        10.0,
        gt=0,
        description="Save a resumable checkpoint beside the output this often; a rerun of "
        "a cut-off run with the same data, base and settings continues from it (removed "
        "once the model is saved). None: never.",
    )


def _find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL such as https://www.megabox.co.kr")
    return value.rstrip("/")


class MegaboxSettings(BaseModel):
    enabled: bool = True
    base_url: str = Field(
        "https://www.megabox.co.kr", description="Site root; point it at the fake site for demos."
    )
    page_size: int = Field(10, ge=1, le=100, description="Reviews per page (the site uses 10).")
    movie_list_page_size: int = Field(100, ge=1, le=200)
    review_kind: Literal["", "PREV", "EXPE"] = Field(
        "", description="'' all, 'PREV' post-viewing only, 'EXPE' expectation only."
    )
    allow_training: bool | None = Field(
        None,
        description="May these reviews train models? None follows the site's robots.txt "
        "content signal (ai-train=no means no); true/false decide explicitly.",
    )

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value)


class CgvSettings(BaseModel):
    enabled: bool = True
    base_url: str = Field("https://cgv.co.kr", description="Site root (the apex domain).")
    chart_path: str = Field(
        "/api/v1/booking/searchAtktTopPostrList?coCd=A420&movNm=&div=&attrCd=",
        description="Booking chart endpoint (movies now showing), fetched inside the browser.",
    )
    movie_page_path: str = Field(
        "/cnm/cgvChart/movieChart/{movie_id}", description="Movie page holding the reviews."
    )
    review_api_marker: str = Field(
        "searchRviewRviewPageList",
        description="Part of the URL of the review API calls the page makes while scrolling.",
    )
    scroll_wait_s: float = Field(
        3.0, gt=0, description="How long to wait for a review call after a scroll."
    )
    egg_labels: dict[str, Literal["positive", "negative"]] = Field(
        default_factory=dict,
        description="Raw egScore value -> label, once its meaning is checked on a live "
        'response (e.g. {"2": "positive", "1": "negative"}). Unmapped values: no label.',
    )
    allow_training: bool | None = Field(
        False,
        description="CGV's robots.txt signals ai-train=no, so its reviews are for analysis "
        "and scoring only unless an operator sets this to true.",
    )

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value)


class CrawlSettings(BaseModel):
    user_agent: str = Field(
        "cinesense-crawler/0.1 (self-hosted review-sentiment research; obeys robots.txt)",
        min_length=8,
        description="Sent with every request; its first word is the robots.txt agent name.",
    )
    rate_limit_per_s: float = Field(
        1.0, gt=0, le=1000, description="Most requests per second to one host."
    )
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(20.0, gt=0)
    max_retries: int = Field(3, ge=0, le=10, description="Retries on timeouts, 429 and 5xx.")
    backoff_base_s: float = Field(2.0, ge=0, description="First retry waits about this long.")
    backoff_max_s: float = Field(60.0, ge=0, description="Longest single wait between tries.")
    breaker_threshold: int = Field(
        5, ge=1, description="Consecutive failures at one host that open the circuit breaker."
    )
    breaker_cooldown_s: float = Field(300.0, ge=0, description="How long an open breaker waits.")
    robots_ttl_s: float = Field(3600.0, ge=0, description="How long a robots.txt is reused.")
    block_markers: list[str] = Field(
        default_factory=lambda: [
            "비정상적으로 CGV에 접속",
            "이용이 제한",
            "RAY_ID",
            "Attention Required! | Cloudflare",
            "cf-chl-",
        ],
        description="Text that marks a block page (checked whenever HTML comes back).",
    )
    chromium_path: str | None = Field(
        default_factory=_find_chromium,
        description="Chromium for the browser route (CGV); Debian: apt-get install chromium.",
    )
    browser_timeout_s: float = Field(30.0, gt=0, description="Page loads in the browser.")
    commit_every: int = Field(
        1000, ge=1, description="Store a crawl's new reviews every this many (and at the end)."
    )
    store_prefix: str = Field("reviews", description="Key prefix in object storage.")
    megabox: MegaboxSettings = MegaboxSettings()
    cgv: CgvSettings = CgvSettings()


class StorageSettings(BaseModel):
    backend: Literal["local", "s3"] = Field(
        "local", description="'local' (a folder, the embedded default) or 's3' (S3-compatible)."
    )
    local_root: Path | None = Field(None, description="Default: CINESENSE_HOME/storage.")
    bucket: str = "cinesense"
    endpoint_url: str | None = Field(None, description="e.g. http://minio:9000; unset for AWS.")
    region: str = "us-east-1"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    create_bucket: bool = Field(True, description="Create the bucket when it is missing.")
    timeout_s: float = Field(10.0, gt=0)
    max_attempts: int = Field(3, ge=1, le=10)


class MlflowSettings(BaseModel):
    tracking_uri: str | None = Field(
        None,
        description="MLflow server (http://mlflow:5000). Default: an embedded SQLite store in "
        "CINESENSE_HOME with local artifacts.",
    )
    experiment: str = "cinesense-sentiment"
    model_name: str = "cinesense-sentiment"
    request_timeout_s: float = Field(
        20.0,
        gt=0,
        description="Seconds one MLflow request may take (the health check, and MLflow's "
        "MLFLOW_HTTP_REQUEST_TIMEOUT, in whole seconds).",
    )
    max_retries: int = Field(
        3,
        ge=0,
        le=10,
        description="Retries of a failed or timed-out MLflow request before a clear error "
        "(MLFLOW_HTTP_REQUEST_MAX_RETRIES).",
    )
    promotion_margin: float = Field(
        0.002, ge=0, lt=1, description="Accuracy gain (fraction) a challenger needs to win."
    )


class ServeSettings(BaseModel):
    model_reference: str = Field(
        "champion", description="Registry alias or version number the service serves."
    )
    bundle_dir: Path | None = Field(
        None,
        description="Serve this serving bundle directory instead of the registry (no "
        "polling): for a single machine without MLflow, or benchmarks.",
    )
    poll_interval_s: float = Field(30.0, gt=0, description="How often the alias is checked.")
    max_texts: int = Field(256, ge=1, le=10_000, description="Texts per /v1/predict request.")
    max_analyze_texts: int = Field(5000, ge=1, description="Reviews per /v1/analyze request.")
    max_text_chars: int = Field(
        2000,
        ge=1,
        description="Longer texts are rejected (422). Texts within it but beyond the model's "
        "token window are truncated, and the response says so per item.",
    )
    uncertain_below: float = Field(
        0.6, ge=0.5, le=1, description="Confidence under which the label is 'uncertain'."
    )
    batch_max_size: int = Field(64, ge=1, description="Most texts one micro-batch runs.")
    inference_batch_size: int = Field(
        4,
        ge=1,
        description="Texts per ONNX Runtime call within a micro-batch (length-sorted). Small "
        "on CPUs, where padding costs more than per-call overhead saves.",
    )
    batch_max_wait_ms: float = Field(
        2.0, ge=0, description="How long a micro-batch waits for more requests once started."
    )
    onnx_threads: int | None = Field(
        None, ge=1, description="ONNX Runtime threads (default: the CPUs this process may use)."
    )
    admin_api_key: SecretStr | None = Field(
        None, description="Key for admin endpoints (X-API-Key); unset disables them."
    )
    log_texts: bool = Field(False, description="Log review texts (debugging only; privacy).")
    keyword_top_k: int = Field(10, ge=1, le=100)


class AirflowApiSettings(BaseModel):
    """How the service reaches Airflow's REST API v2 (the UI's crawl and retrain actions)."""

    base_url: str | None = Field(
        None,
        description="Airflow api-server root, e.g. http://airflow-apiserver:8080 (with its "
        "[api] base_url prefix, e.g. .../airflow, when it has one). Unset: actions are off.",
    )
    username: str | None = Field(None, description="Airflow user the service acts as.")
    password: SecretStr | None = None
    timeout_s: float = Field(10.0, gt=0)
    crawl_dag_id: str = "crawl_reviews"
    train_dag_id: str = "train_model"


class UiSettings(BaseModel):
    """The Streamlit analysis app: where the API is and how it sends large inputs."""

    api_url: str = Field("http://127.0.0.1:8000", description="The FastAPI service's root.")
    timeout_s: float = Field(60.0, gt=0)
    cache_ttl_s: float = Field(30.0, ge=0, description="How long API answers are reused.")
    chunk_size: int = Field(
        1000, ge=1, description="Reviews per /v1/predict call (capped at the API's MAX_TEXTS)."
    )
    upload_max_mb: int = Field(50, ge=1, description="Largest upload; nginx allows the same.")
    mlflow_link: str = Field("/mlflow/", description="MLflow UI link shown on the model page.")
    airflow_link: str = Field("/airflow/", description="Airflow UI link shown on the pages.")


class NginxSettings(BaseModel):
    """The front door (nginx/templates/cinesense.conf.template); see cinesense.frontdoor."""

    listen_port: int = Field(80, ge=1, le=65535)
    server_name: str = "_"
    ui_upstream: str = Field("ui:8501", description="host:port of Streamlit.")
    api_upstream: str = Field("api:8000", description="host:port of the FastAPI service.")
    mlflow_upstream: str = Field("mlflow:5000", description="host:port of the MLflow server.")
    airflow_upstream: str = Field(
        "airflow-apiserver:8080", description="host:port of the Airflow api-server."
    )
    api_rate_per_s: int = Field(50, ge=1, description="Requests/s per client IP on /api/.")
    api_burst: int = Field(100, ge=0, description="Requests beyond the rate queued, then 429.")
    admin_basic_auth: bool = Field(
        False, description="Also ask for an nginx password (htpasswd) on /mlflow/ and /airflow/."
    )
    htpasswd_file: str = "/etc/nginx/htpasswd"
    access_log: str = "/dev/stdout"
    error_log: str = "/dev/stderr"


def _checkout_path(relative: str) -> Path | None:
    """A folder of the source checkout (the DAGs, the UI), when the package runs from one."""
    path = Path(__file__).resolve().parents[2] / relative
    return path if path.exists() else None


def _shipped_bundle() -> Path:
    return Path(__file__).resolve().parent / "default_model"


class StackSettings(BaseModel):
    """The whole platform on one machine (``make up``, ``cinesense stack …``) and the one
    entrypoint per service that containers use too (``cinesense stack run SERVICE``)."""

    home: Path | None = Field(
        None, description="Data, logs, configs and secrets of the platform. Default: HOME/stack."
    )
    bind_host: str = Field(
        "127.0.0.1", description="Interface every service listens on (0.0.0.0 in containers)."
    )
    hosts: dict[str, str] = Field(
        default_factory=dict,
        description="Host name by which the other services reach a service, by service name "
        '(containers: {"mlflow": "mlflow", …}). Default: 127.0.0.1.',
    )
    frontdoor_port: int = Field(8080, ge=1, le=65535, description="nginx: the one front door.")
    public_url: str | None = Field(
        None,
        description="The front door as browsers reach it (Airflow's links and redirects, the "
        "printed URLs). Default: http://<nginx host>:<frontdoor port>.",
    )
    api_port: int = Field(8000, ge=1, le=65535)
    ui_port: int = Field(8501, ge=1, le=65535)
    mlflow_port: int = Field(5000, ge=1, le=65535)
    airflow_port: int = Field(8081, ge=1, le=65535, description="Airflow's api-server (its UI).")
    airflow_log_port: int = Field(8793, ge=1, le=65535, description="Airflow's task-log server.")
    airflow_trigger_log_port: int = Field(8794, ge=1, le=65535)
    objectstore_port: int = Field(8333, ge=1, le=65535, description="The S3 endpoint.")
    objectstore_internal_port: int = Field(
        9333,
        ge=1,
        le=55530,
        description="SeaweedFS master; volume and filer take the next two ports, and each "
        "also listens 10000 above its own (gRPC).",
    )
    artifact_bucket: str = Field("mlflow", description="Bucket of MLflow's artifacts.")
    mlflow_prefix: str = Field("/mlflow", description="MLflow's path prefix (behind nginx).")
    mlflow_admin_username: str = "admin"
    airflow_admin_username: str = "admin"
    airflow_dags_folder: Path | None = Field(
        default_factory=lambda: _checkout_path("airflow/dags"),
        description="The project's DAGs (default: airflow/dags of the checkout).",
    )
    airflow_bin: Path | None = Field(
        default_factory=lambda: _checkout_path(".venv-airflow/bin"),
        description="Folder of the Airflow virtualenv's programs (airflow, cinesense).",
    )
    airflow_database_uri: SecretStr | None = Field(
        None, description="Airflow's metadata database. Default: SQLite in the stack home."
    )
    mlflow_database_uri: SecretStr | None = Field(
        None,
        description="MLflow's tracking and login database (SQLAlchemy URI). Default: SQLite "
        "in the stack home.",
    )
    ui_app: Path | None = Field(
        default_factory=lambda: _checkout_path("streamlit/app.py"),
        description="The Streamlit app (default: streamlit/app.py of the checkout).",
    )
    default_bundle: Path | None = Field(
        default_factory=_shipped_bundle,
        description="Serving bundle registered and gated as the first champion when the "
        "registry has none (default: the bundle shipped in the package).",
    )
    demo: bool = Field(
        False, description="Crawl the local fake site once at start-up (demo data, marked)."
    )
    demo_site_port: int = Field(8765, ge=1, le=65535, description="The fake site's port (demo).")
    startup_timeout_s: float = Field(240.0, gt=0, description="How long one service may take.")
    # Generated into HOME/stack/secrets.env on first start (see cinesense.stack.secrets).
    mlflow_admin_password: SecretStr | None = None
    mlflow_secret_key: SecretStr | None = None
    airflow_admin_password: SecretStr | None = None
    airflow_jwt_secret: SecretStr | None = None
    airflow_secret_key: SecretStr | None = None


class Settings(BaseSettings):
    """Every tunable of the platform. ``Settings()`` reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="CINESENSE_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    environment: Literal["development", "production", "test"] = Field(
        "development",
        description="Outside development and test, a service will not start while a secret "
        "it needs is missing or a placeholder (see Settings.require_secrets).",
    )
    home: Path = Field(Path(".cinesense"), description="Where datasets and models are kept.")
    log_level: str = "INFO"
    hf_token: SecretStr | None = Field(None, description="Hugging Face token for private models.")
    hf_offline: bool = Field(False, description="Never contact the Hugging Face hub.")
    num_threads: int | None = Field(None, ge=1, description="Torch CPU threads (default: all).")

    data: DataSettings = DataSettings()
    storage: StorageSettings = StorageSettings()
    crawl: CrawlSettings = CrawlSettings()
    mlflow: MlflowSettings = MlflowSettings()
    pretrain: PretrainSettings = PretrainSettings()
    train: TrainSettings = TrainSettings()
    serve: ServeSettings = ServeSettings()
    stack: StackSettings = StackSettings()
    airflow: AirflowApiSettings = AirflowApiSettings()
    ui: UiSettings = UiSettings()
    nginx: NginxSettings = NginxSettings()

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def self_built_base_dir(self) -> Path:
        return self.models_dir / "base"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def model_cache_dir(self) -> Path:
        return self.home / "model-cache"

    @property
    def corpus_cache_dir(self) -> Path:
        return self.home / "corpus"

    def secret_problems(self, service: str) -> list[str]:
        """The secrets ``service`` needs that are missing or placeholders, as setting names."""
        needed = list(SERVICE_SECRETS.get(service, ()))
        if self.storage.backend == "s3" and service in STORAGE_USERS:
            needed += ["storage.access_key_id", "storage.secret_access_key"]
        if service == "api" and self.airflow.base_url:
            needed.append("airflow.password")
        problems = []
        for dotted in needed:
            group, name = dotted.split(".")
            value = getattr(getattr(self, group), name)
            if value is None or _is_placeholder(value.get_secret_value()):
                problems.append(f"CINESENSE_{group.upper()}__{name.upper()}")
        return problems

    def require_secrets(self, service: str) -> None:
        """Stop a service at start, outside development and test, when a secret it needs is
        missing or a placeholder; says which to set."""
        if self.environment in ("development", "test"):
            return
        problems = self.secret_problems(service)
        if problems:
            raise SettingsError(
                f"{service} will not start in the {self.environment} environment: "
                f"{', '.join(problems)} missing or a placeholder. Set each to a generated "
                "value (e.g. `openssl rand -hex 32`), or set CINESENSE_ENVIRONMENT=development "
                "on a machine of your own."
            )


# The secrets each service needs (group.field); object-storage keys come on top when the
# backend is s3, and the API's Airflow password when its Airflow actions are configured.
SERVICE_SECRETS: dict[str, tuple[str, ...]] = {
    "api": ("serve.admin_api_key",),
    "mlflow": ("stack.mlflow_admin_password", "stack.mlflow_secret_key"),
    "airflow-apiserver": (
        "stack.airflow_admin_password",
        "stack.airflow_jwt_secret",
        "stack.airflow_secret_key",
    ),
    "airflow-scheduler": ("stack.airflow_jwt_secret", "stack.airflow_secret_key"),
    "airflow-dag-processor": ("stack.airflow_jwt_secret", "stack.airflow_secret_key"),
    "airflow-triggerer": ("stack.airflow_jwt_secret", "stack.airflow_secret_key"),
    "model-init": ("stack.mlflow_admin_password",),
}
STORAGE_USERS = {
    "api",
    "mlflow",
    "objectstore",
    "model-init",
    *(s for s in SERVICE_SECRETS if "airflow" in s),
}
PLACEHOLDERS = {"changeme", "change-me", "change_me", "placeholder", "secret", "password",
                "example", "todo", "xxx", "none", "null"}  # fmt: skip


def _is_placeholder(value: str) -> bool:
    text = value.strip().lower()
    return not text or text in PLACEHOLDERS or text.startswith(("change-me", "changeme", "<"))


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests build their own ``Settings(...)`` instead."""
    return Settings()
