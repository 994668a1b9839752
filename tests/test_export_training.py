"""The exported files train: ``datasets.load_dataset`` reads them and a TRL trainer takes a step.

The model is a tiny Llama built from a config and the tokenizer a word-level one built here from the
rows' words, with a ChatML template given inline: nothing is downloaded. What is checked is which
tokens are in the loss (``labels`` other than -100, as ``SFTTrainer`` prepares them).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("trl")

from datasets import Dataset, load_dataset  # noqa: E402
from support.export_log import Log, many_conversations  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer  # noqa: E402

from feedback.export import ExportOptions, run_export  # noqa: E402
from schemas.records import Review  # noqa: E402

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<unk>", "<|im_start|>", "<|im_end|>", "<pad>"]
SYSTEM = ("system", "You answer questions about capitals in one short sentence.")


def tokenizer_for(rows: list[dict]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose vocabulary is every word of the rows' messages."""
    split = pre_tokenizers.Whitespace()
    words = sorted(
        {
            word
            for row in rows
            for value in row.values()
            if isinstance(value, list)
            for message in value
            for text in (message["role"], message["content"])
            for word, _ in split.pre_tokenize_str(text)
        }
    )
    vocab = {token: i for i, token in enumerate([*SPECIAL, *words])}
    model = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    model.pre_tokenizer = split
    return PreTrainedTokenizerFast(
        tokenizer_object=model,
        unk_token="<unk>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        chat_template=CHATML,
    )


def tiny_model(tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def trainer_args(config: type, out: Path) -> object:
    return config(
        output_dir=str(out),
        max_steps=1,
        per_device_train_batch_size=2,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        logging_strategy="no",
        dataset_num_proc=None,
    )


def sft_trainer(dataset: Dataset, out: Path) -> SFTTrainer:
    tokenizer = tokenizer_for(list(dataset))
    return SFTTrainer(
        model=tiny_model(tokenizer),
        args=trainer_args(SFTConfig, out),
        train_dataset=dataset,
        processing_class=tokenizer,
    )


def loss_tokens(trainer: SFTTrainer, example: dict) -> list[str]:
    """The tokens of a prepared example that are in the loss."""
    kept = [token for token, label in zip(example["input_ids"], example["labels"], strict=True) if label != -100]
    return trainer.processing_class.convert_ids_to_tokens(kept)


def words(trainer: SFTTrainer, text: str) -> list[str]:
    return trainer.processing_class.tokenize(text)


def chat_log() -> Log:
    """Conversations with a system prompt, earlier disliked and unrated replies, and a liked last reply."""
    log = Log()
    for n in range(4):
        conversation = f"conversation-{n:03d}"
        question = [SYSTEM, ("user", f"What is the capital of country {n}?")]
        bad = log.turn(conversation, 0, question, f"I do not know country {n}.")
        log.rate(bad, "dislike")
        unrated = log.turn(conversation, 0, question, f"Maybe city {n}.", regenerated_from=bad.message_id)
        follow_up = [*question, ("assistant", unrated.response), ("user", "Are you sure?")]
        log.rate(log.turn(conversation, 1, follow_up, f"Yes: the capital is city {n}."), "like")
    return log


def read_json_files(out: Path, cache: Path) -> Dataset:
    return load_dataset("json", data_files={"train": str(out / "train.jsonl")}, cache_dir=str(cache), split="train")


def test_sft_trainer_computes_the_loss_on_the_liked_reply_only(tmp_path):
    data_dir = chat_log().write(tmp_path / "data")
    run_export("sft", str(data_dir), tmp_path / "out", ExportOptions(test_size=0), progress=False)
    dataset = read_json_files(tmp_path / "out", tmp_path / "cache")
    assert dataset.column_names == ["prompt", "completion"] and dataset.num_rows == 4
    trainer = sft_trainer(dataset, tmp_path / "trainer")
    for row, example in zip(dataset, trainer.train_dataset, strict=True):
        assert row["prompt"][0]["role"] == "system" and row["prompt"][-1] == {
            "role": "user",
            "content": "Are you sure?",
        }
        reply = row["completion"][0]["content"]
        assert loss_tokens(trainer, example) == [*words(trainer, reply), "<|im_end|>"]
        assert len(example["input_ids"]) > 3 * len(loss_tokens(trainer, example))  # the prompt is there, masked
    assert math.isfinite(trainer.train().training_loss)


def test_messages_rows_put_every_token_in_the_loss(tmp_path):
    """``--messages`` keeps the language-modeling format: SFTTrainer trains on the prompt too."""
    data_dir = chat_log().write(tmp_path / "data")
    run_export("sft", str(data_dir), tmp_path / "out", ExportOptions(test_size=0, messages=True), progress=False)
    dataset = read_json_files(tmp_path / "out", tmp_path / "cache")
    assert dataset.column_names == ["messages"]
    trainer = sft_trainer(dataset, tmp_path / "trainer")
    for example in trainer.train_dataset:
        assert example["labels"] == example["input_ids"]
    assert math.isfinite(trainer.train().training_loss)


# -- issue 14, item 1: an empty test split loads every documented way, and trains ---------------


def test_an_export_with_an_empty_test_split_loads_every_documented_way_and_trains(tmp_path):
    log = Log()
    many_conversations(log, 6)
    data_dir = log.write(tmp_path / "data")
    out = tmp_path / "out"
    run_export("dpo", str(data_dir), out, ExportOptions(test_size=0), progress=False)
    assert not (out / "test.jsonl").exists()
    assert json.loads((out / "stats.json").read_text())["files"] == {"train": "train.jsonl", "test": None}
    cache = str(tmp_path / "cache")
    loaded = [
        load_dataset(str(out), cache_dir=cache),
        load_dataset("json", data_dir=str(out), cache_dir=cache),
        load_dataset("json", data_files={"train": str(out / "train.jsonl")}, cache_dir=cache),
    ]
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    for dataset in loaded:
        assert list(dataset) == ["train"] and dataset["train"].to_list() == rows
    train = loaded[0]["train"]
    assert train.column_names == ["prompt", "chosen", "rejected"] and train.num_rows == 2  # n = 1, 3 (5: flagged)
    tokenizer = tokenizer_for(list(train))
    model = tiny_model(tokenizer)
    trainer = DPOTrainer(
        model=model,
        ref_model=copy.deepcopy(model),
        args=trainer_args(DPOConfig, tmp_path / "dpo"),
        train_dataset=train,
        processing_class=tokenizer,
    )
    assert math.isfinite(trainer.train().training_loss)


# -- issue 14, item 2: a reviewer's correction trains SFT -----------------------------------------


def test_a_reviewers_correction_is_trained_on_by_sft(tmp_path):
    log = chat_log()
    wrong = log.turn("conversation-fix", 0, [SYSTEM, ("user", "What is the capital of France?")], "Lyon is.")
    log.rate(wrong, "dislike")
    log.flag(wrong, "Inaccurate", comment="it is Paris")
    review = Review(
        conversation_id=wrong.conversation_id,
        message_id=wrong.message_id,
        decision="needs-fix",
        corrected_reply="The capital of France is Paris.",
        reviewer="ann",
        timestamp=log.now(),
    )
    data_dir = log.write(tmp_path / "data")
    from feedback.store import FeedbackStore

    store = FeedbackStore(data_dir)
    store.append(review)
    store.close()
    run_export("sft", str(data_dir), tmp_path / "out", ExportOptions(test_size=0, include_ids=True), progress=False)
    dataset = read_json_files(tmp_path / "out", tmp_path / "cache")
    (fixed,) = [row for row in dataset if row["corrected_id"] == wrong.message_id]
    assert fixed["prompt"] == [
        {"role": "system", "content": SYSTEM[1]},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert fixed["completion"] == [{"role": "assistant", "content": "The capital of France is Paris."}]
    assert fixed["message_id"] is None and fixed["count"] == 1
    trainer = sft_trainer(dataset.select_columns(["prompt", "completion"]), tmp_path / "trainer")
    (example,) = [
        example
        for row, example in zip(dataset, trainer.train_dataset, strict=True)
        if row["corrected_id"] == wrong.message_id
    ]
    assert loss_tokens(trainer, example) == [*words(trainer, "The capital of France is Paris."), "<|im_end|>"]
    assert math.isfinite(trainer.train().training_loss)
