"""Data only: the records chat-feedback stores and its settings (pydantic models, no I/O)."""

from schemas.records import (
    ID_PATTERN,
    RECORD_TYPES,
    SCHEMA_VERSION,
    ChatMessage,
    Deletion,
    Flag,
    GenerationParams,
    InputValue,
    Rating,
    Record,
    Review,
    Turn,
    is_valid_id,
    new_id,
    utc_now,
)
from schemas.settings import Settings

__all__ = [
    "ID_PATTERN",
    "RECORD_TYPES",
    "SCHEMA_VERSION",
    "ChatMessage",
    "Deletion",
    "Flag",
    "GenerationParams",
    "InputValue",
    "Rating",
    "Record",
    "Review",
    "Settings",
    "Turn",
    "is_valid_id",
    "new_id",
    "utc_now",
]
