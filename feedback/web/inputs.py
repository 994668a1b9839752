"""A chat app's additional inputs (``gr.ChatInterface(additional_inputs=[...])``): as optional
named parameters of the ``/chat`` API, and as the ``params`` a turn records.

On the page Gradio preprocesses each input's value through its component; over the API a client
sends any JSON, so :meth:`ExtraInput.check` refuses what the component would never produce (a
string for a slider, a value outside its range, a choice the dropdown does not offer).
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from feedback.errors import FeedbackError
from schemas.records import GenerationParams, InputValue

RESERVED = ("message", "conversation_id", "message_id", "consent")
"""Parameter names the API's own arguments use."""
TYPED_PARAMS = {"temperature": float, "top_p": float, "max_tokens": int, "seed": int}
"""Inputs whose label names one of these also set that typed field of ``params``."""


@dataclass(frozen=True)
class ExtraInput:
    """One additional input of the chat function.

    Args:
        name: the API parameter name (from the label: ``"Max tokens"`` -> ``max_tokens``).
        label: the name recorded in ``params.inputs``.
        default: the component's value, used when a client leaves the parameter out.
        hint: the Python type the API documents (``float`` for a slider, ``str`` for a textbox).
        choices: the values a dropdown or radio offers (None: any value of the type).
        minimum / maximum: a slider's or number's range (None: unbounded).
    """

    name: str
    label: str
    default: Any
    hint: type
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def check(self, value: Any) -> Any:
        """``value`` if the component could have produced it (a number for a slider, ...).

        Raises:
            FeedbackError: otherwise, naming the parameter.
        """
        if value is None:
            return None
        if self.hint is list:
            if not isinstance(value, list) or len(value) > 100:
                raise FeedbackError(f"{self.name} must be a list of at most 100 choices")
            if self.choices is not None and any(item not in self.choices for item in value):
                raise FeedbackError(f"{self.name} must be chosen from {list(self.choices)[:20]}")
            return value
        if self.hint is bool and not isinstance(value, bool):
            raise FeedbackError(f"{self.name} must be true or false")
        if self.hint in (int, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FeedbackError(f"{self.name} must be a number")
            if self.minimum is not None and value < self.minimum or self.maximum is not None and value > self.maximum:
                raise FeedbackError(f"{self.name} must be between {self.minimum} and {self.maximum}")
        if self.hint is str and not isinstance(value, str):
            raise FeedbackError(f"{self.name} must be a string")
        if self.hint is Any and not isinstance(value, str | int | float | bool):
            raise FeedbackError(f"{self.name} must be a string, a number or true/false")
        if self.choices is not None and value not in self.choices:
            raise FeedbackError(f"{self.name} must be one of {list(self.choices)[:20]}")
        if isinstance(value, str) and len(value) > 10_000:
            raise FeedbackError(f"{self.name} is limited to 10,000 characters")
        return value


@dataclass(frozen=True)
class ExtraInputs:
    """The additional inputs of one chat app, in the order the chat function takes them."""

    inputs: tuple[ExtraInput, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, components: Sequence[gr.components.Component]) -> ExtraInputs:
        """The specs of ``components`` (``gr.ChatInterface``'s ``additional_inputs``)."""
        taken: set[str] = set(RESERVED)
        specs = []
        for position, component in enumerate(components, start=1):
            label = str(getattr(component, "label", None) or f"input {position}")
            name = _parameter_name(label, position, taken)
            taken.add(name)
            specs.append(_spec(component, name, label))
        return cls(tuple(specs))

    def values(self, given: dict[str, Any]) -> list[Any]:
        """The function's extra arguments from a client's named parameters (defaults for the rest).

        Raises:
            FeedbackError: for an unknown parameter or a value its component would not produce.
        """
        unknown = sorted(set(given) - {spec.name for spec in self.inputs})
        if unknown:
            raise FeedbackError(f"unknown parameters {unknown[:5]}; this app takes {[s.name for s in self.inputs]}")
        return [spec.check(given[spec.name]) if spec.name in given else spec.default for spec in self.inputs]

    def params(self, values: Sequence[Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
        """``GenerationParams`` fields for a turn: ``base`` (the responder's), the inputs by label,
        and the typed fields an input's label names (``Temperature`` -> ``temperature``)."""
        params = dict(base or {})
        recorded = []
        for spec, value in zip(self.inputs, values, strict=False):
            try:
                text = json.dumps(value)
            except (TypeError, ValueError):
                text = json.dumps(str(value))
            recorded.append(InputValue(name=spec.label, value=text))
            typed = TYPED_PARAMS.get(spec.name)
            if typed is not None and isinstance(value, int | float) and not isinstance(value, bool):
                params[spec.name] = typed(value)
        if recorded:
            params["inputs"] = tuple(recorded)
        GenerationParams(**params)  # fail here, not when the turn is written
        return params


def _parameter_name(label: str, position: int, taken: set[str]) -> str:
    name = re.sub(r"\W+", "_", label.strip().lower()).strip("_") or f"input_{position}"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"input_{name}"
    base, n = name, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def _spec(component: gr.components.Component, name: str, label: str) -> ExtraInput:
    default = getattr(component, "value", None)
    default = None if callable(default) else default
    if isinstance(component, gr.Checkbox):
        return ExtraInput(name, label, default, bool)
    if isinstance(component, gr.Slider | gr.Number):
        return ExtraInput(
            name,
            label,
            default,
            float,
            minimum=getattr(component, "minimum", None),
            maximum=getattr(component, "maximum", None),
        )
    if isinstance(component, gr.Dropdown | gr.Radio):
        choices = tuple(c[1] if isinstance(c, tuple) else c for c in (component.choices or ()))
        custom = isinstance(component, gr.Dropdown) and component.allow_custom_value
        if isinstance(component, gr.Dropdown) and component.multiselect:
            return ExtraInput(name, label, default, list, choices=None if custom else choices)
        return ExtraInput(name, label, default, str, choices=None if custom else choices)
    if isinstance(component, gr.Textbox):
        return ExtraInput(name, label, default, str)
    return ExtraInput(name, label, default, Any)
