"""The dataset card (``README.md``) of a feedback dataset repo (written into the data dir by
:func:`feedback.hub.files.write_card`).

Its YAML ``configs`` name one config per record kind pointing at its day partitions
(``turns/*/*.parquet``, see :mod:`feedback.hub.layout`) and the ``flagged`` review view written by
compaction, and ``dataset_info`` gives each config's features explicitly, so the Hub's dataset viewer
and ``datasets.load_dataset(repo, "turns")`` read the files without guessing types, before and after
compaction alike. The card also carries ready-to-run DuckDB SQL (what the Hub's SQL console runs)
for the common reviews; each leaves out the conversations a record of the ``deletions`` config names
(their rows stay in the repo from the deletion record until the commit that erases them).
"""

from __future__ import annotations

from datasets import DatasetInfo
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData

from feedback.features import RECORD_FEATURES
from feedback.hub.flagged import FLAGGED_DOCS, FLAGGED_FEATURES
from feedback.hub.layout import FLAGGED

FIELD_DOCS = {
    "turns": [
        ("conversation_id", "the conversation (one per browser session or API client conversation)"),
        ("message_id", "the id of the assistant reply; ratings and flags refer to it"),
        ("turn_index", "0-based position of the reply in its conversation; a retry keeps the index"),
        ("messages", "the prompt the model saw (role, content, files), ending with the user message"),
        ("response", "the assistant reply"),
        ("model", "the model that answered"),
        ("params", "generation parameters (temperature, top_p, max_tokens, seed)"),
        ("latency_ms", "time from request to last token, in milliseconds (null: not measured)"),
        ("regenerated_from", "for a retry: the reply it replaces"),
        ("edited_from", "for a changed user message: the reply of the earlier version"),
        ("source", "ui (the page), api (custom front end) or interface (gr.Interface flag)"),
    ],
    "ratings": [
        ("message_id", "the rated reply"),
        ("rating", "like, dislike, or null for an undo; the latest rating of a reply counts"),
        ("option", "a custom option picked with the rating (one of the flag reasons)"),
        ("comment", "free text from the user"),
        ("source", "ui or api"),
    ],
    "flags": [
        ("message_id", "the flagged reply"),
        ("reasons", "one or more reasons, e.g. Inaccurate, Harmful, Off-topic, Other"),
        ("comment", "free text from the user"),
        ("source", "ui or api"),
    ],
    "reviews": [
        ("message_id", "the reviewed (flagged) reply"),
        ("decision", "confirmed (the flag is right), dismissed (it is not) or needs-fix; the latest counts"),
        ("corrected_reply", "a better reply written by the reviewer (a chosen candidate for DPO/SFT)"),
        ("note", "the reviewer's note"),
        ("reviewer", "the reviewer's user name"),
    ],
    "deletions": [
        ("requested_by", "who asked for the conversation to be deleted: user, reviewer or operator"),
        ("reviewer", "the reviewer's user name, when a reviewer deleted it"),
    ],
}


def dataset_card(*, repo_id: str, license: str, consent: str, kinds: tuple[str, ...] = tuple(RECORD_FEATURES)) -> str:
    """The card's text: YAML metadata (configs, features, license) and a description.

    Args:
        repo_id: ``owner/name`` of the dataset repo (used in the usage example).
        license: a Hub license id (e.g. ``cc-by-4.0``, ``other``).
        consent: the notice users saw, quoted as how consent was collected.
    """
    data = DatasetCardData(
        license=license,
        pretty_name=f"Chat feedback: {repo_id.split('/')[-1]}",
        task_categories=["text-generation"],
        tags=["chat-feedback", "human-feedback", "preference"],
        configs=[
            *({"config_name": kind, "data_files": f"{kind}/*/*.parquet"} for kind in kinds),
            {"config_name": FLAGGED, "data_files": f"{FLAGGED}/*.parquet"},
        ],
    )
    features = {**{kind: RECORD_FEATURES[kind] for kind in kinds}, FLAGGED: FLAGGED_FEATURES}
    infos = DatasetInfosDict({name: DatasetInfo(config_name=name, features=f) for name, f in features.items()})
    infos.to_dataset_card_data(data)
    return str(DatasetCard.from_template(data, template_str=_template(repo_id, consent, kinds)))


def _template(repo_id: str, consent: str, kinds: tuple[str, ...]) -> str:
    sections = []
    for kind in kinds:
        rows = "\n".join(f"| `{name}` | {text} |" for name, text in FIELD_DOCS[kind])
        sections.append(f"### `{kind}`\n\n| field | meaning |\n|---|---|\n{rows}\n")
    rows = "\n".join(f"| `{name}` | {text} |" for name, text in FLAGGED_DOCS)
    sections.append(f"### `{FLAGGED}` (written by compaction)\n\n| field | meaning |\n|---|---|\n{rows}\n")
    fields = "\n".join(sections)
    queries = "\n\n".join(f"{title}:\n\n```sql\n{sql.strip()}\n```" for title, sql in review_queries(repo_id))
    return f"""---
{{{{ card_data }}}}
---

# Chat feedback

Conversations with a chat model and what its users thought of each reply, collected by a
chat-feedback app: every turn, every like / dislike / undo, and every flag,
each tied to a `conversation_id` and the `message_id` of the reply.

## How the data was collected

Users chatted on a Gradio page or through its API. The page showed this notice:

> {consent}

Records are events, appended and never rewritten. Each app process writes its own JSONL shards;
every push uploads the new ones as Parquet files partitioned by day (`turns/2026-12-02/<shard>.parquet`,
likewise `ratings/`, `flags/`, `reviews/`, `deletions/`), and a daily compaction merges a closed day's files
into one (`<first shard>~c<hash>.parquet`) and rewrites `flagged/`, the review queue as a table. Uploaded
files are under `files/`, named by their SHA-256. Every record has `schema_version`, a UTC `timestamp`
and the `conversation_id`. No IP addresses or tokens are recorded.

A conversation its user, a reviewer or an operator deleted has a record in `deletions` (no text, only
its id and who asked). From that record on, the exports, the review queue, the stats and the `flagged`
view ignore every record of the conversation, and a commit erases them from the repo; until that
commit, the SQL queries below leave it out too (`deleted`).

## Usage

```python
from datasets import load_dataset

turns = load_dataset("{repo_id}", "turns", split="train")
ratings = load_dataset("{repo_id}", "ratings", split="train")
```

The latest rating of a reply is the one that counts (`rating: null` is an undo). To build SFT, DPO
or KTO datasets from this repo: `python -m feedback export dpo --source {repo_id} --out DIR`.

## Reviewing with SQL

DuckDB SQL, as the dataset page's SQL console runs it (or `duckdb` with `hf://` paths).

{queries}

## Fields

{fields}"""


DELETED_SQL = """deleted AS (
    SELECT DISTINCT conversation_id FROM read_parquet('{base}/*/*/*.parquet', filename = true)
    WHERE filename LIKE '%/deletions/%' AND conversation_id IS NOT NULL
)"""
"""The card queries' common table of deleted conversations: the ``conversation_id`` of every record in
``deletions/``. Read through the glob of every record kind's day partitions, filtered by file name, so
that it matches (no rows) in a repo with no ``deletions/`` folder, where ``'deletions/*/*.parquet'`` alone
fails with "No files found"; DuckDB opens only the files the filter keeps."""


def review_queries(repo_id: str) -> list[tuple[str, str]]:
    """The card's ready-to-run DuckDB queries for ``repo_id``: ``(title, sql)``. Each leaves out the
    conversations of the ``deletions`` config (:data:`DELETED_SQL`)."""
    base = f"hf://datasets/{repo_id}"
    deleted = DELETED_SQL.format(base=base)
    return [
        (
            "Open flags by reason",
            f"""
WITH {deleted}
SELECT reason.reason, count(*) AS open_replies, sum(reason.count) AS flags
FROM (SELECT unnest(reasons) AS reason FROM '{base}/{FLAGGED}/*.parquet'
      WHERE status = 'open' AND conversation_id NOT IN (SELECT conversation_id FROM deleted))
GROUP BY ALL ORDER BY open_replies DESC;""",
        ),
        (
            "Prompts with the worst like rate (latest rating of each reply, at least 3 rated replies)",
            f"""
WITH {deleted},
latest AS (
    SELECT conversation_id, message_id, rating FROM '{base}/ratings/*/*.parquet'
    QUALIFY row_number() OVER (PARTITION BY conversation_id, message_id ORDER BY timestamp DESC) = 1
)
SELECT t.messages[-1].content AS prompt, count(*) AS rated, avg((l.rating = 'like')::INTEGER) AS like_rate
FROM '{base}/turns/*/*.parquet' AS t JOIN latest AS l USING (conversation_id, message_id)
WHERE l.rating IS NOT NULL AND t.conversation_id NOT IN (SELECT conversation_id FROM deleted)
GROUP BY ALL HAVING count(*) >= 3 ORDER BY like_rate, rated DESC LIMIT 20;""",
        ),
        (
            "A model's flagged replies this week (set the model's name)",
            f"""
WITH {deleted}
SELECT last_flagged_at, status, reasons, messages[-1].content AS prompt, response
FROM '{base}/{FLAGGED}/*.parquet'
WHERE model = 'MODEL NAME' AND last_flagged_at >= now() - INTERVAL 7 DAY
    AND conversation_id NOT IN (SELECT conversation_id FROM deleted)
ORDER BY last_flagged_at DESC;""",
        ),
    ]
