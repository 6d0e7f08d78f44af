"""Settings, read from the environment in this one place, once per container."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from llm_app.identity import SESSION_SCOPES

# The seed app's system prompt; Terraform's `system_prompt` variable overrides it.
DEFAULT_SYSTEM_PROMPT = (
    "You are a cool and aloof robot, answering questions very briefly and directly."
)


class ConfigError(ValueError):
    """The function's environment is wrong; raised at import so the deploy fails loudly."""


@dataclass(frozen=True)
class Settings:
    endpoint_name: str
    # The Hub id of the model the endpoint serves (Terraform's model_id): what the OpenAI
    # route's `/v1/models` lists (empty: the endpoint's name stands for it).
    model_id: str = ""
    # False while Terraform has the endpoint paused (endpoint_enabled = false): the functions
    # then answer 503 model_paused without calling SageMaker.
    endpoint_enabled: bool = True
    # Generation: the seed's defaults. SageMaker cuts a real-time invocation at 60 s, so
    # max_new_tokens must be generated inside that (TinyLlama on a g5 does ~100 tokens/s).
    max_new_tokens: int = 700
    temperature: float = 0.5
    top_p: float = 0.9
    # The container's MAX_INPUT_TOKENS: prompts are budgeted against it before sending.
    max_input_tokens: int = 1348
    # Request limits.
    max_question_chars: int = 4000
    max_body_bytes: int = 262_144
    # botocore: the read timeout covers SageMaker's 60 s invoke limit plus transfer; with
    # max_attempts the worst case (2 x 70 s + connects) stays under the 180 s function timeout.
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 70.0
    max_attempts: int = 2
    # Debugging: log prompts and answers (user data) only when asked.
    log_prompts: bool = False
    # Chat only.
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # Where the system prompt goes: auto (a system message; folded into the first user message
    # once the model's chat template refuses a system role), system, or user (always folded).
    system_prompt_placement: str = "auto"
    history_table_name: str = ""
    history_ttl_days: int = 7
    history_max_turns: int = 20
    # Document QA only. Buckets the function may read `s3://` documents from, comma-separated
    # (empty: S3 documents are refused); the IAM role grants s3:GetObject on exactly these.
    qa_document_buckets: str = ""
    # Most document bytes per request, after S3 reads and PDF text extraction.
    qa_max_document_bytes: int = 524_288
    # Most chunks a request's documents may split into: each is one model call.
    qa_max_chunks: int = 200
    # Map calls in flight at once; TGI batches concurrent requests.
    qa_map_concurrency: int = 4
    # Seconds kept back from the Lambda deadline to answer 504 before Lambda kills the function.
    qa_deadline_reserve_seconds: float = 5.0
    # The chat URL's auth type: AWS_IAM scopes sessions to the signed caller; NONE (public)
    # accepts only session ids the function issued.
    url_authorization_type: str = "AWS_IAM"
    # Chat, AWS_IAM only: whose conversations a signed request reaches. "caller": the account
    # and userId; "role": the account and an assumed role's unique id, whatever its session name.
    chat_session_scope: str = "caller"
    # Terraform: tracing_mode = "Active". Only then is the X-Ray SDK imported
    # (llm_app.runtime.tracing).
    tracing_enabled: bool = False
    # Set by Terraform with the Lambda Web Adapter (response_streaming = true): model calls for
    # a streamed answer then stream too (InvokeEndpointWithResponseStream). The buffered door
    # ("buffered", no adapter) renders a requested stream from one InvokeEndpoint call, so a
    # buffered deployment calls, and is granted, exactly what it was before streaming existed.
    aws_lwa_invoke_mode: str = "buffered"
    # The adapter's paths that never reach the routes (llm_app.http.web): its readiness check,
    # and SnapStart's hooks when Terraform sets them (empty: none).
    aws_lwa_readiness_check_path: str = "/"
    aws_lwa_snapstart_before_checkpoint_path: str = ""
    aws_lwa_snapstart_after_restore_path: str = ""
    # Powertools' names, set by Terraform: the function (chat or qa) and the metrics' namespace.
    powertools_service_name: str = "llm_app"
    powertools_metrics_namespace: str = "LLMApp"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables named like the fields, upper-cased."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        problems: list[str] = []
        for field in fields(cls):
            name = field.name.upper()
            raw = env.get(name)
            if raw is None or (raw == "" and field.type != "str"):
                continue
            try:
                values[field.name] = _PARSERS[str(field.type)](raw)
            except ValueError:
                problems.append(f"{name}={raw!r} is not a valid {field.type}")
        if not values.get("endpoint_name"):
            problems.append("ENDPOINT_NAME is not set: it names the SageMaker endpoint to call")
        if problems:
            raise ConfigError("; ".join(problems))
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        checks: list[tuple[bool, str]] = [
            (self.max_new_tokens >= 1, "MAX_NEW_TOKENS must be at least 1"),
            (self.max_input_tokens >= 64, "MAX_INPUT_TOKENS must be at least 64"),
            # The Messages API decodes greedily at exactly 0 (TGI and vLLM alike).
            (0 <= self.temperature <= 2, "TEMPERATURE must be from 0 (greedy) to 2"),
            (0 < self.top_p < 1, "TOP_P must be between 0 and 1, exclusive (TGI's rule)"),
            (self.max_question_chars >= 1, "MAX_QUESTION_CHARS must be at least 1"),
            (self.max_body_bytes >= 1024, "MAX_BODY_BYTES must be at least 1024"),
            (self.connect_timeout_seconds > 0, "CONNECT_TIMEOUT_SECONDS must be positive"),
            (self.read_timeout_seconds > 0, "READ_TIMEOUT_SECONDS must be positive"),
            (1 <= self.max_attempts <= 5, "MAX_ATTEMPTS must be between 1 and 5"),
            (self.history_ttl_days >= 1, "HISTORY_TTL_DAYS must be at least 1"),
            (self.history_max_turns >= 1, "HISTORY_MAX_TURNS must be at least 1"),
            (self.qa_max_document_bytes >= 1, "QA_MAX_DOCUMENT_BYTES must be at least 1"),
            (self.qa_max_chunks >= 1, "QA_MAX_CHUNKS must be at least 1"),
            (1 <= self.qa_map_concurrency <= 64, "QA_MAP_CONCURRENCY must be between 1 and 64"),
            (
                self.qa_deadline_reserve_seconds >= 0,
                "QA_DEADLINE_RESERVE_SECONDS must not be negative",
            ),
            (
                self.system_prompt_placement in ("auto", "system", "user"),
                "SYSTEM_PROMPT_PLACEMENT must be auto, system or user",
            ),
            (
                self.url_authorization_type in ("AWS_IAM", "NONE"),
                "URL_AUTHORIZATION_TYPE must be AWS_IAM or NONE",
            ),
            (
                self.chat_session_scope in SESSION_SCOPES,
                "CHAT_SESSION_SCOPE must be caller or role",
            ),
            (
                self.aws_lwa_invoke_mode in ("buffered", "response_stream"),
                "AWS_LWA_INVOKE_MODE must be buffered or response_stream",
            ),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def streams_model_calls(self) -> bool:
        """Whether a streamed answer's model call streams (only behind the adapter)."""
        return self.aws_lwa_invoke_mode == "response_stream"

    @property
    def document_buckets(self) -> frozenset[str]:
        return frozenset(b.strip() for b in self.qa_document_buckets.split(",") if b.strip())

    @property
    def generation_kwargs(self) -> dict[str, Any]:
        """Sampling parameters in the Messages API's names.

        Temperature 0 asks for greedy decoding, and then top_p is left out: TGI samples
        whenever any warper is set, so a top_p beside it would turn sampling back on.
        """
        if self.temperature == 0:
            return {"max_tokens": self.max_new_tokens, "temperature": 0.0}
        return {
            "max_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
        }


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(raw)


class AuthConfigError(ConfigError):
    """The sign-in environment is wrong; raised at import so the deploy fails loudly."""


@dataclass(frozen=True)
class AuthSettings:
    """Bearer sign-in (llm_app.auth); both modes may be on at once, or neither."""

    # API keys (api_keys_enabled): the DynamoDB table of keys and usage; empty = no keys.
    api_keys_table_name: str = ""
    # OIDC/Cognito tokens: the exact `iss` accepted; empty = no tokens.
    jwt_issuer: str = ""
    # The `aud` (or a Cognito access token's `client_id`) a token must name one of.
    jwt_audiences: tuple[str, ...] = ()
    # Where the signing keys are; empty = the jwks_uri of the issuer's discovery document.
    jwt_jwks_url: str = ""

    @property
    def api_keys_enabled(self) -> bool:
        return bool(self.api_keys_table_name)

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.jwt_issuer)

    @property
    def bearer_enabled(self) -> bool:
        return self.api_keys_enabled or self.jwt_enabled


def auth_settings_from_env(env: Mapping[str, str] | None = None) -> AuthSettings:
    """API_KEYS_TABLE_NAME, JWT_ISSUER, JWT_AUDIENCES (comma-separated), JWT_JWKS_URL."""
    env = os.environ if env is None else env
    settings = AuthSettings(
        api_keys_table_name=env.get("API_KEYS_TABLE_NAME", "").strip(),
        jwt_issuer=env.get("JWT_ISSUER", "").strip(),
        jwt_audiences=tuple(
            audience.strip()
            for audience in env.get("JWT_AUDIENCES", "").split(",")
            if audience.strip()
        ),
        jwt_jwks_url=env.get("JWT_JWKS_URL", "").strip(),
    )
    problems: list[str] = []
    if settings.jwt_enabled and not settings.jwt_audiences:
        problems.append("JWT_AUDIENCES must name at least one audience when JWT_ISSUER is set")
    if settings.jwt_jwks_url and not settings.jwt_enabled:
        problems.append("JWT_JWKS_URL is set but JWT_ISSUER is not")
    for name, url in (("JWT_ISSUER", settings.jwt_issuer), ("JWT_JWKS_URL", settings.jwt_jwks_url)):
        if url and not is_fetchable(url):
            problems.append(f"{name} must be an https URL (http only on a loopback address)")
    if problems:
        raise AuthConfigError("; ".join(problems))
    return settings


def is_fetchable(url: str) -> bool:
    """https anywhere; plain http only to this machine (tests and `make local`)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


# Field annotations are strings (postponed evaluation), so parsers are keyed by type name.
_PARSERS: Mapping[str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": _parse_bool,
}
