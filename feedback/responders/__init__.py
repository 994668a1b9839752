"""Responders: the chat models the app can answer with (``FEEDBACK_RESPONDER``)."""

from __future__ import annotations

from feedback.responders.base import Responder
from feedback.responders.echo import EchoResponder
from feedback.responders.errors import ResponderError
from schemas.settings import Settings

__all__ = ["EchoResponder", "Responder", "ResponderError", "make_responder"]


def make_responder(settings: Settings) -> Responder:
    """The responder ``settings.responder`` names, configured from ``settings``.

    Raises:
        ResponderError: when it cannot be built (e.g. an unreadable replay file).
    """
    if settings.responder == "openai":
        from feedback.responders.openai import OpenAIResponder

        return OpenAIResponder(
            model=settings.model or "",  # required by Settings for this responder
            base_url=settings.base_url,
            token=settings.hf_token.get_secret_value() if settings.hf_token else None,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            system_prompt=settings.system_prompt,
        )
    if settings.responder == "replay":
        from feedback.responders.replay import ReplayResponder

        assert settings.replay_file is not None  # checked by Settings
        try:
            return ReplayResponder(settings.replay_file)
        except (OSError, ValueError) as error:
            raise ResponderError(f"cannot read FEEDBACK_REPLAY_FILE {str(settings.replay_file)!r}: {error}") from error
    return EchoResponder()
