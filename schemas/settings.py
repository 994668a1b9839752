"""The app's configuration: one pydantic settings model, read from the environment in one place.

Every variable is ``FEEDBACK_<FIELD>`` (e.g. ``FEEDBACK_DATA_DIR``) except the Hugging Face token,
read from ``HF_TOKEN`` as the rest of the Hugging Face tooling does. Values are validated when
``Settings()`` is built, so a bad value stops the app at start with a message naming it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.records import REPO_ID_PATTERN

DEFAULT_FLAG_REASONS = ("Inaccurate", "Harmful", "Off-topic", "Other")
DEFAULT_NOTICE = (
    "Conversations, ratings and flags on this page are recorded to improve the model. "
    "Do not share personal information."
)
POLICY_URL_PATTERN = r"^(https?://[^\s<>()\[\]\"'`]+|/[^\s<>()\[\]\"'`]*)$"
"""A privacy policy link: an http(s) URL or a path on this server, with nothing that could break
out of the Markdown link or HTML attribute it is shown in."""


def default_data_dir() -> Path:
    """``/data`` on a Hugging Face Space with persistent storage, else ``./data``."""
    if os.environ.get("SPACE_ID") and Path("/data").is_dir() and os.access("/data", os.W_OK):
        return Path("/data")
    return Path("data")


class Settings(BaseSettings):
    """Validated app settings; see the README's configuration table for each variable.

    Raises:
        pydantic.ValidationError: on a bad value, with the variable named (e.g. ``responder``
            not one of echo/openai/replay, ``replay_file`` missing for the replay responder).
    """

    model_config = SettingsConfigDict(env_prefix="FEEDBACK_", extra="ignore", frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir)
    responder: Literal["echo", "openai", "replay"] = "echo"
    model: str | None = None
    base_url: str | None = None
    system_prompt: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2, allow_inf_nan=False)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    replay_file: Path | None = None
    hf_token: SecretStr | None = Field(default=None, validation_alias="HF_TOKEN")

    title: str = "Chat"
    notice: str = DEFAULT_NOTICE
    consent: Literal["notice", "required"] = "notice"
    policy_url: str | None = Field(default=None, max_length=2000)
    redact: bool = False
    flag_reasons: Annotated[tuple[str, ...], NoDecode] = DEFAULT_FLAG_REASONS
    max_message_chars: int = Field(default=100_000, ge=1, le=1_000_000)
    max_comment_chars: int = Field(default=10_000, ge=1, le=100_000)
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024, le=1024**3, description="bytes")
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1024**3, description="bytes")

    dataset_repo: str | None = Field(default=None, pattern=REPO_ID_PATTERN)
    sync_every: float = Field(
        default=5.0, ge=0.005, le=1440, allow_inf_nan=False, description="minutes (0.3 s to a day)"
    )
    hub_timeout: float = Field(default=30.0, ge=0.1, le=600, allow_inf_nan=False, description="seconds")
    private: bool = True
    license: str = "other"

    reviewers: Annotated[tuple[str, ...], NoDecode] = ()
    review_auth: SecretStr | None = None
    review_lockout: float = Field(default=300.0, ge=1, le=86400, allow_inf_nan=False, description="seconds")

    shard_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=1024**3, description="bytes")
    shard_max_age: float = Field(default=3600.0, ge=1, le=7 * 86400, allow_inf_nan=False, description="seconds")
    session_ttl: float = Field(default=3600.0, ge=10, le=7 * 86400, allow_inf_nan=False, description="seconds idle")
    log_level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR"] = "INFO"

    @field_validator("flag_reasons", mode="before")
    @classmethod
    def _split_reasons(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        return value

    @field_validator("flag_reasons")
    @classmethod
    def _check_reasons(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        reasons = tuple(r for r in (v.strip() for v in value) if r)
        if not reasons:
            raise ValueError("give at least one flag reason (comma-separated)")
        clash = {"Like", "Dislike"} & set(reasons)
        if clash:
            raise ValueError(f"{sorted(clash)} are reserved for the thumbs; pick other flag reasons")
        if len(set(reasons)) != len(reasons):
            raise ValueError(f"flag reasons repeat: {list(reasons)}")
        if len(reasons) > 20 or any(len(r) > 60 for r in reasons):
            raise ValueError("give at most 20 flag reasons of at most 60 characters each")
        return reasons

    @field_validator("reviewers", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    def review_credentials(self) -> list[tuple[str, str]]:
        """``FEEDBACK_REVIEW_AUTH`` ("user:password,user2:password2") as ``[(user, password)]``.

        Raises:
            ValueError: for an entry without a colon.
        """
        if self.review_auth is None:
            return []
        return _credential_pairs(self.review_auth.get_secret_value())

    @field_validator("review_auth")
    @classmethod
    def _check_review_auth(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _credential_pairs(value.get_secret_value())
        return value

    @field_validator("policy_url")
    @classmethod
    def _check_policy_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.fullmatch(POLICY_URL_PATTERN, value):
            raise ValueError(
                "give an http(s) URL or a path starting with '/', without spaces, quotes, brackets or parentheses"
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_responder(self) -> Settings:
        if self.responder == "openai" and not self.model:
            raise ValueError(
                "the openai responder needs FEEDBACK_MODEL: the model id to request "
                "(recorded with every turn; with FEEDBACK_BASE_URL, the name the server expects)"
            )
        if self.responder == "replay":
            if self.replay_file is None:
                raise ValueError("the replay responder needs FEEDBACK_REPLAY_FILE (an hh-rlhf .jsonl or .jsonl.gz)")
            if not self.replay_file.is_file():
                raise ValueError(f"FEEDBACK_REPLAY_FILE {str(self.replay_file)!r} is not a file")
        return self


def _credential_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for entry in text.split(","):
        if entry.strip():
            user, sep, password = entry.strip().partition(":")
            if not sep or not user or not password:
                raise ValueError("entries must be user:password, comma-separated (the value is not shown)")
            pairs.append((user, password))
    return pairs


def describe_error(error: ValidationError) -> str:
    """A settings error as one short line per bad variable, naming it, e.g.
    ``FEEDBACK_SYNC_EVERY='1e-9': Input should be greater than or equal to 0.005``.

    The value is shown except for secrets (``HF_TOKEN``, ``FEEDBACK_REVIEW_AUTH``).
    """
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        info = Settings.model_fields.get(field)
        if info is not None and info.validation_alias:
            name = str(info.validation_alias)
        else:
            name = f"FEEDBACK_{field.upper()}" if field else "settings"
        message = str(item["msg"]).removeprefix("Value error, ")
        secret = info is not None and info.annotation in (SecretStr, SecretStr | None)
        value = item.get("input")
        shown = "" if secret or not field or isinstance(value, dict) else f"={str(value)[:60]!r}"
        lines.append(f"{name}{shown}: {message}")
    return "\n".join(lines)
