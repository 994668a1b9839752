"""The exported rows are what TRL expects: its own dataset helpers accept every format.

No model or tokenizer is downloaded: the tokenizer is a word-level one built here, with a
ChatML chat template given inline.
"""

from __future__ import annotations

import pytest

pytest.importorskip("trl")

from datasets import Dataset, DatasetDict  # noqa: E402
from support.export_log import SCENARIOS, Log, many_conversations  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402
from trl.data_utils import (  # noqa: E402
    apply_chat_template,
    is_conversational,
    maybe_extract_prompt,
    maybe_unpair_preference_dataset,
)

from feedback.export import ExportOptions, export_records  # noqa: E402

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
FORMATS = ("sft", "dpo", "kto", "flags")


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    vocab = {"<unk>": 0, "<|im_start|>": 1, "<|im_end|>": 2}
    model = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=model,
        unk_token="<unk>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        chat_template=CHATML,
    )


@pytest.fixture(scope="module")
def log() -> Log:
    log = Log()
    for build in SCENARIOS.values():
        build(log)
    many_conversations(log, 30)
    return log


@pytest.fixture(scope="module")
def exports(log: Log) -> dict:
    options = ExportOptions(test_size=0.3, seed=1)
    return {fmt: export_records(fmt, log.turns, log.ratings, log.flags, options) for fmt in FORMATS}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_row_is_conversational_and_keeps_its_explicit_prompt(exports, fmt):
    rows = exports[fmt].rows()
    assert rows
    for row in rows:
        assert is_conversational(row)
        assert maybe_extract_prompt(row) == row


@pytest.mark.parametrize("fmt", FORMATS)
def test_apply_chat_template_renders_every_row(exports, tokenizer, fmt):
    for row in exports[fmt].rows():
        rendered = apply_chat_template(row, tokenizer)
        assert rendered["prompt"].endswith("<|im_start|>assistant\n")
        if fmt == "sft":
            assert rendered["completion"] == f"{row['completion'][0]['content']}<|im_end|>\n"
        if fmt == "dpo":
            assert rendered["chosen"] == f"{row['chosen'][0]['content']}<|im_end|>\n"
            assert rendered["rejected"] == f"{row['rejected'][0]['content']}<|im_end|>\n"
        if fmt == "kto":
            assert rendered["label"] is row["label"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_dataset_dict_maps_through_apply_chat_template(exports, tokenizer, fmt):
    dataset = exports[fmt].to_dataset_dict()
    assert isinstance(dataset, DatasetDict) and set(dataset) == {"train", "test"}
    assert sum(part.num_rows for part in dataset.values()) == len(exports[fmt].rows())
    mapped = dataset["train"].map(apply_chat_template, fn_kwargs={"processing_class": tokenizer})
    assert mapped.num_rows == dataset["train"].num_rows


def test_unpaired_dpo_rows_are_the_kto_rows_of_the_same_replies(log):
    options = ExportOptions(test_size=0, include_ids=True)
    pairs = export_records("dpo", log.turns, log.ratings, log.flags, options).rows()
    assert len(pairs) > 10
    unpaired = maybe_unpair_preference_dataset(Dataset.from_list(pairs).remove_columns(["conversation_id"]))
    in_pairs = {row[key] for row in pairs for key in ("chosen_id", "rejected_id")}

    def triple(row: dict) -> tuple:
        return repr(row["prompt"]), repr(row["completion"]), row["label"]

    paired_turns = [turn for turn in log.turns if turn.message_id in in_pairs]
    kto = export_records("kto", paired_turns, log.ratings, log.flags, options)
    assert {triple(row) for row in unpaired} == {triple(row) for row in kto.rows()}
    assert maybe_unpair_preference_dataset(kto.to_dataset_dict())["train"].num_rows == len(kto.rows())
