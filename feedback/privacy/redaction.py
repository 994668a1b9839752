"""Personal data out of every record: a write-gate step replacing it by typed placeholders.

``FEEDBACK_REDACT=on`` puts a :class:`Redactor` in the write gate. It finds, in every free-text
field of every record (a turn's prompt messages, its reply and its text inputs, a rating's or a
flag's comment, a review's corrected reply and note), these kinds of personal data, and replaces
each by its placeholder before the record reaches a shard; what the user sees in the chat is not
touched (the page and the API show the reply they streamed, not the record):

- ``<EMAIL>``: email addresses (Presidio: a pattern, the domain checked against the public suffixes);
- ``<PHONE>``: phone numbers (Presidio: libphonenumber), international ``+...`` numbers of any
  country, and national formats of the US, GB, DE, FR, IL, IN, CA and BR;
- ``<CREDIT_CARD>``: card numbers, 13-19 digits with or without spaces or dashes (Presidio: Luhn check);
- ``<IP_ADDRESS>``: IPv4 and IPv6 addresses, also with a prefix length (Presidio);
- ``<IBAN>``: IBANs with or without spaces (Presidio: country format and checksum);
- ``<CREDENTIAL_URL>``: a URL with ``user:password@``, a token as its user, or a secret query
  parameter (``token=``, ``api_key=``, ``password=``, ``sig=``, ...): ours, Presidio has none.

Presidio's pattern recognizers run with a blank spaCy pipeline (``spacy.blank("en")``): a tokenizer
only, no model to download, so the app starts offline. What that cannot find is what needs a
trained model: person names, postal addresses, organisations, dates of birth; nor does it find
obfuscated forms (``jane at example dot com``), phone numbers in national formats of other
countries, card numbers that fail the Luhn check (typos), bare API keys or passwords outside a
URL, or anything inside uploaded files. The README's "Privacy" section gives the measured
precision and recall per type.

Overlapping findings are merged (a URL's ``password@host`` part is also an email address): the
union of their characters is replaced, named by the longest finding, so no character any
recognizer flagged is kept. Plain URLs are kept: they are rarely personal and often the point of
a question.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from loguru import logger

from schemas.records import ChatMessage, Flag, GenerationParams, InputValue, Rating, Record, Review, Turn

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

PLACEHOLDERS = {
    "EMAIL_ADDRESS": "<EMAIL>",
    "PHONE_NUMBER": "<PHONE>",
    "CREDIT_CARD": "<CREDIT_CARD>",
    "IP_ADDRESS": "<IP_ADDRESS>",
    "IBAN_CODE": "<IBAN>",
    "CREDENTIAL_URL": "<CREDENTIAL_URL>",
}
"""Presidio entity type -> the placeholder that replaces it in records."""

SCORE_THRESHOLD = 0.35
"""Findings scored below this are ignored. Every recognizer used scores its findings 0.4 or more
(a phone number 0.4, an IP address 0.6, a validated email, card or IBAN 1.0), except Presidio's
bare ``::`` (the unspecified IPv6 address, 0.1), which is no one's address and is ordinary text in
code (``x :: Int``)."""

CACHE_MAX_CHARS = 8_192
"""Texts up to this long are remembered (a conversation's earlier messages come back in every
turn's prompt): at most :data:`CACHE_ENTRIES` of them, so the cache stays under about 16 M characters."""
CACHE_ENTRIES = 2_048

_MAY_HOLD = re.compile(r"[0-9@:]")
"""Every kind found needs a digit, an ``@`` or a ``:`` (an IPv6 address may be hex letters only);
a text with none of them is returned without running the recognizers."""

_URL_END = r"[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]}]"
_SECRET_PARAMS = (
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "auth",
    "auth_token",
    "api_key",
    "apikey",
    "api-key",
    "key",
    "secret",
    "client_secret",
    "password",
    "passwd",
    "pwd",
    "pass",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "sessionid",
    "session_id",
    "jwt",
)
CREDENTIAL_URL_PATTERNS = (
    ("url with user:password", r"(?i)\b[a-z][a-z0-9+.\-]{1,15}://[^\s/?#@:<>\"'`]*:[^\s/?#@<>\"'`]+@" + _URL_END),
    ("url with a token as user", r"(?i)\b[a-z][a-z0-9+.\-]{1,15}://[A-Za-z0-9_\-]{20,}@" + _URL_END),
    (
        "url with a secret parameter",
        r"(?i)\b[a-z][a-z0-9+.\-]{1,15}://[^\s<>\"'`]*?[?&#;](?:"
        + "|".join(re.escape(p) for p in _SECRET_PARAMS)
        + r")="
        + _URL_END,
    ),
)
"""Our own recognizer's patterns (Presidio's URL recognizer finds URLs, not their credentials)."""


@dataclass(frozen=True)
class Finding:
    """One span of personal data in a text: ``text[start:end]`` is replaced by ``placeholder``."""

    start: int
    end: int
    placeholder: str


def merge(findings: Iterable[Finding]) -> list[Finding]:
    """Overlapping findings as one span each (their union), named by the longest, in text order.

    >>> merge([Finding(0, 10, "<URL>"), Finding(4, 12, "<EMAIL>"), Finding(20, 25, "<IP>")])
    [Finding(start=0, end=12, placeholder='<URL>'), Finding(start=20, end=25, placeholder='<IP>')]
    """
    merged: list[tuple[Finding, int]] = []  # (span so far, length of its longest finding)
    for finding in sorted(findings, key=lambda f: (f.start, -f.end)):
        length = finding.end - finding.start
        if merged and finding.start < merged[-1][0].end:
            span, longest = merged[-1]
            name = finding.placeholder if length > longest else span.placeholder
            merged[-1] = (Finding(span.start, max(span.end, finding.end), name), max(length, longest))
        else:
            merged.append((finding, length))
    return [span for span, _ in merged]


def replace(text: str, findings: Iterable[Finding]) -> str:
    """``text`` with each (merged) finding replaced by its placeholder."""
    parts, at = [], 0
    for finding in merge(findings):
        parts += [text[at : finding.start], finding.placeholder]
        at = finding.end
    parts.append(text[at:])
    return "".join(parts)


def build_analyzer() -> AnalyzerEngine:
    """A Presidio analyzer with the pattern recognizers of :data:`PLACEHOLDERS` on a blank spaCy
    pipeline: no model is loaded or downloaded, and nothing is fetched from the network (the
    email check's public-suffix list is tldextract's bundled snapshot).

    Raises:
        ImportError: when presidio-analyzer or spacy is not installed.
    """
    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
    )

    class BlankSpacyEngine(SpacyNlpEngine):
        """Presidio's spaCy engine on ``spacy.blank("en")``: tokens only, no NER model to load."""

        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": "en", "model_name": "blank:en"}])

        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    offline_tlds = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's email recognizer, its domain checked against the bundled suffix list (the
        stock one downloads the list on first use, and waits on the network when it is closed)."""

        def validate_result(self, pattern_text: str) -> bool:
            return offline_tlds(pattern_text).fqdn != ""

    class NoContextEnhancer(ContextAwareEnhancer):
        """Findings as the recognizers scored them. Presidio's context enhancer only raises a score
        when words like "phone" stand nearby, and every kind kept already scores above
        :data:`SCORE_THRESHOLD`, so it would change nothing here; it also looks up each finding's
        tokens from the start of the text, which makes a long message cost quadratic time."""

        def __init__(self) -> None:
            super().__init__(0.0, 0.0, 0, 0)

        def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):  # noqa: ANN001, ANN201
            return raw_results

    credential_urls = PatternRecognizer(
        supported_entity="CREDENTIAL_URL",
        name="CredentialUrlRecognizer",
        patterns=[Pattern(name, regex, 1.0) for name, regex in CREDENTIAL_URL_PATTERNS],
    )
    engine = BlankSpacyEngine()
    engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (
        OfflineEmailRecognizer(),
        PhoneRecognizer(),
        CreditCardRecognizer(),
        IpRecognizer(),
        IbanRecognizer(),
        credential_urls,
    ):
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(
        nlp_engine=engine, registry=registry, supported_languages=["en"], context_aware_enhancer=NoContextEnhancer()
    )


class Redactor:
    """A write-gate step: every record with its personal data replaced by typed placeholders.

    Args:
        analyzer: a Presidio ``AnalyzerEngine``; default :func:`build_analyzer` (takes a few
            seconds: Presidio and spaCy are imported here, not when this module is).

    >>> Redactor().text("write to jane@example.com")   # doctest: +SKIP
    'write to <EMAIL>'
    """

    def __init__(self, analyzer: AnalyzerEngine | None = None) -> None:
        self.analyzer = analyzer or build_analyzer()
        self._entities = list(PLACEHOLDERS)
        self._cached: Callable[[str], str] = lru_cache(maxsize=CACHE_ENTRIES)(self._redact)

    def findings(self, text: str) -> list[Finding]:
        """Every piece of personal data in ``text`` (unmerged; see :func:`merge`)."""
        if not _MAY_HOLD.search(text):
            return []
        results = self.analyzer.analyze(text, language="en", entities=self._entities, score_threshold=SCORE_THRESHOLD)
        return [Finding(r.start, r.end, PLACEHOLDERS[r.entity_type]) for r in results if r.entity_type in PLACEHOLDERS]

    def text(self, text: str) -> str:
        """``text`` with every finding replaced by its placeholder."""
        if not text:
            return text
        return self._cached(text) if len(text) <= CACHE_MAX_CHARS else self._redact(text)

    def _redact(self, text: str) -> str:
        return replace(text, self.findings(text))

    def message(self, message: ChatMessage) -> ChatMessage:
        """A chat message with its content redacted (its files are references, kept as they are)."""
        content = self.text(message.content)
        return message if content == message.content else message.model_copy(update={"content": content})

    def __call__(self, record: Record) -> Record:
        """The gate step: ``record`` with every free-text field redacted (see :data:`TEXT_FIELDS`);
        a record of another kind is returned as it is."""
        match record:
            case Turn():
                update = {
                    "messages": tuple(self.message(m) for m in record.messages),
                    "response": self.text(record.response),
                    "params": self._inputs(record.params),
                }
            case Rating() | Flag():
                update = {"comment": self._optional(record.comment)}
            case Review():
                update = {
                    "corrected_reply": self._optional(record.corrected_reply),
                    "note": self._optional(record.note),
                }
            case _:
                return record
        if all(getattr(record, name) == value for name, value in update.items()):
            return record
        logger.bind(conversation_id=record.conversation_id).debug("personal data replaced in a {} record", record.kind)
        return record.model_copy(update=update)

    def _optional(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)

    def _inputs(self, params: GenerationParams) -> GenerationParams:
        """The strings among the app's additional input values (what was typed into a textbox, a
        dropdown's choice) are redacted; numbers and true/false are kept."""
        if not params.inputs:
            return params
        inputs = tuple(InputValue(name=i.name, value=_redact_json(i.value, self.text)) for i in params.inputs)
        return params if inputs == params.inputs else params.model_copy(update={"inputs": inputs})


def _redact_json(value: str, redact: Callable[[str], str]) -> str:
    """JSON text with its strings redacted (a non-string value is returned as it is)."""
    try:
        data = json.loads(value)
    except ValueError:
        return redact(value)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return redact(item)
        if isinstance(item, list):
            return [walk(i) for i in item]
        return item

    changed = walk(data)
    return value if changed == data else json.dumps(changed)


TEXT_FIELDS = {
    "turns": ("messages", "response", "params"),
    "ratings": ("comment",),
    "flags": ("comment",),
    "reviews": ("corrected_reply", "note"),
}
"""The free-text fields redacted, per record kind (the other fields are ids, times, configured
values such as flag reasons, the model name, and the reviewer's sign-in name)."""
