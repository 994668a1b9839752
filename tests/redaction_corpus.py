"""The labelled redaction corpus (``tests/data/redaction_corpus.jsonl``) and how it is scored.

Each line is a text and the personal data in it (``{"type": "EMAIL", "value": "..."}``, the value a
substring of the text), or a *negative*: a text holding none, usually a lookalike of one type
(a version number for an IP address, a date for a phone number). Written for these tests; the
values are documentation and test values (``example.com``, ``555-01xx`` numbers, the card
networks' and banks' published test numbers), no one's real data.

Scoring, per type, with the redactor's findings merged as they are replaced:

- **recall**: the share of labelled values that a finding *of the same type* covers entirely (a
  value only partly replaced counts as missed: its rest is written);
- **precision**: the share of findings of a type that overlap a labelled value of that type (a
  finding on a negative, or on another type's value, is a false positive).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from feedback.privacy.redaction import Finding, Redactor, merge

CORPUS = Path(__file__).resolve().parent / "data" / "redaction_corpus.jsonl"
TYPES = ("EMAIL", "PHONE", "CREDIT_CARD", "IP_ADDRESS", "IBAN", "CREDENTIAL_URL")


@dataclass(frozen=True)
class Example:
    """One corpus line: the text and its labelled spans ``(type, start, end)``."""

    text: str
    spans: tuple[tuple[str, int, int], ...]
    lookalike: str | None = None


@dataclass
class Score:
    """Counts for one type."""

    labelled: int = 0
    found: int = 0  # labelled values entirely covered by a finding of their type
    findings: int = 0
    correct: int = 0  # findings overlapping a labelled value of their type
    missed: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.labelled if self.labelled else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.findings if self.findings else 1.0


def examples(path: Path = CORPUS) -> Iterator[Example]:
    """The corpus, line by line."""
    for line in path.read_text().splitlines():
        row = json.loads(line)
        text = row["text"]
        spans = []
        for entity in row["entities"]:
            start = text.index(entity["value"])
            spans.append((entity["type"], start, start + len(entity["value"])))
        yield Example(text, tuple(spans), row.get("lookalike"))


def type_of(finding: Finding) -> str:
    """``"<EMAIL>"`` -> ``"EMAIL"``."""
    return finding.placeholder.strip("<>")


def score(redactor: Redactor, corpus: list[Example]) -> dict[str, Score]:
    """Precision and recall per type of ``redactor`` on ``corpus``."""
    scores = {kind: Score() for kind in TYPES}
    for example in corpus:
        findings = merge(redactor.findings(example.text))
        for kind, start, end in example.spans:
            scores[kind].labelled += 1
            if any(type_of(f) == kind and f.start <= start and f.end >= end for f in findings):
                scores[kind].found += 1
            else:
                scores[kind].missed.append(example.text[start:end])
        for finding in findings:
            kind = type_of(finding)
            scores[kind].findings += 1
            if any(k == kind and finding.start < end and finding.end > start for k, start, end in example.spans):
                scores[kind].correct += 1
            else:
                scores[kind].false.append(example.text[finding.start : finding.end])
    return scores


def table(scores: dict[str, Score]) -> str:
    """The scores as the README's markdown table."""
    lines = ["| type | labelled | found | recall | findings | correct | precision |", "|---|---|---|---|---|---|---|"]
    for kind, s in scores.items():
        lines.append(
            f"| `<{kind}>` | {s.labelled} | {s.found} | {s.recall:.2f} | {s.findings} | {s.correct} "
            f"| {s.precision:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # python tests/redaction_corpus.py: the table, and what was missed or wrongly found
    results = score(Redactor(), list(examples()))
    print(table(results))
    for kind, s in results.items():
        print(f"{kind}: missed {s.missed}, false {s.false}")
