"""The command line imports what a command needs only when it runs: ``export`` never imports gradio,
and ``export --help`` not even ``datasets`` (issue 14, item 5). And the new export options reach the rows.

Imports are checked in a fresh interpreter (``sys.modules`` after the command); the time ``--help``
takes is measured by ``bench/bench_export.py``, not asserted here.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.export_log import Log, flagged_dislike, regenerated_four_times, run_cli

from feedback.cli import COMMANDS, build_parser, command_of
from feedback.cli import export as export_command

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("gradio", "gradio_client", "fastapi", "torch")

PROBE = """
import json, runpy, sys
sys.argv = ["feedback", *json.loads(sys.argv[1])]
code = 0
try:
    runpy.run_module("feedback", run_name="__main__")
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def imported_by(*argv: str) -> tuple[int, set[str]]:
    """Run ``python -m feedback ARGV`` in a fresh interpreter; its exit code and the top-level packages it imported."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    return answer["code"], set(answer["modules"])


def test_importing_the_cli_imports_no_command():
    result = subprocess.run(
        [sys.executable, "-c", "import sys, feedback.cli; print(sorted(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    modules = set(eval(result.stdout))  # noqa: S307 - our own subprocess's printed list
    assert not modules & {*HEAVY, "datasets", "pyarrow"}
    assert not {name for name in modules if name.startswith("feedback.cli.")}


@pytest.mark.parametrize("argv", [("--help",), ("export", "--help")])
def test_help_imports_neither_gradio_nor_datasets(argv):
    code, modules = imported_by(*argv)
    assert code == 0 and not modules & {*HEAVY, "datasets", "pandas", "huggingface_hub"}


def test_the_export_command_imports_no_gradio(tmp_path):
    log = Log()
    flagged_dislike(log, "Inaccurate")
    data_dir = log.write(tmp_path / "data")
    code, modules = imported_by(
        "export", "dpo", "--source", str(data_dir), "--out", str(tmp_path / "out"), "--no-progress"
    )
    assert code == 0 and (tmp_path / "out" / "train.jsonl").exists()
    assert not modules & set(HEAVY) and "datasets" in modules


def full_helps() -> dict[str, tuple[str, str]]:
    """Command -> (module, help line) as every module of ``feedback.cli`` with a ``register`` adds it
    (imports them all)."""
    import feedback.cli

    found = {}
    for info in pkgutil.iter_modules(feedback.cli.__path__):
        module = importlib.import_module(f"feedback.cli.{info.name}")
        if hasattr(module, "register"):
            subparsers = argparse.ArgumentParser().add_subparsers()
            module.register(subparsers)
            found.update({action.dest: (info.name, action.help) for action in subparsers._choices_actions})
    return found


def test_the_command_list_names_every_command_with_its_module_and_help():
    """A new command module needs its line in ``feedback.cli.COMMANDS`` (what ``--help`` lists without importing it)."""
    assert full_helps() == COMMANDS


def test_a_command_gets_its_full_parser_and_the_others_a_stub():
    parser = build_parser(command="export")
    args = parser.parse_args(["export", "kto", "--source", "x", "--out", "y", "--pairs", "latest"])
    assert (args.format, args.pairs, args.func) == ("kto", "latest", export_command.run)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["nope"])
    assert command_of(["-h", "export", "--help"]) == "export" and command_of(["--help"]) is None


def test_an_unknown_format_is_refused_with_the_list(capsys):
    with pytest.raises(SystemExit):
        build_parser(command="export").parse_args(["export", "orpo", "--source", "x", "--out", "y"])
    assert "invalid choice: 'orpo' (choose from sft, dpo, kto, flags)" in capsys.readouterr().err


def test_the_help_lists_every_format():
    from feedback.export.formats import FORMATS

    listed = [
        line.split()[0]
        for line in export_command.EPILOG.splitlines()
        if line.startswith("  ") and not line.startswith("   ")
    ]
    assert listed == list(FORMATS)


# -- the new options, end to end ---------------------------------------------------------------


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cli_pairs_latest_and_with_ids_count(tmp_path):
    log = Log()
    regenerated_four_times(log, "conv-aaa")
    regenerated_four_times(log, "conv-bbb")
    data_dir = log.write(tmp_path / "data")
    assert run_cli("dpo", "--source", str(data_dir), "--out", str(tmp_path / "all"), "--test-size", "0") == 0
    assert len(rows(tmp_path / "all" / "train.jsonl")) == 4
    assert (
        run_cli(
            "dpo",
            "--source",
            str(data_dir),
            "--out",
            str(tmp_path / "latest"),
            "--test-size",
            "0",
            "--pairs",
            "latest",
            "--with-ids",
        )
        == 0
    )
    (row,) = rows(tmp_path / "latest" / "train.jsonl")
    assert row["count"] == 2 and row["chosen"][0]["content"] == "It is Paris."
    stats = json.loads((tmp_path / "latest" / "stats.json").read_text())
    assert stats["options"]["pairs"] == "latest" and stats["rows_by_count"]["train"] == {"2": 1}


def test_cli_keep_flagged_reasons(tmp_path):
    log = Log()
    flagged_dislike(log, "Other")
    data_dir = log.write(tmp_path / "data")
    assert run_cli("dpo", "--source", str(data_dir), "--out", str(tmp_path / "default"), "--test-size", "0") == 0
    assert not (tmp_path / "default" / "train.jsonl").exists()
    assert (
        run_cli(
            "dpo",
            "--source",
            str(data_dir),
            "--out",
            str(tmp_path / "other"),
            "--test-size",
            "0",
            "--keep-flagged-reasons",
            "Inaccurate, Other",
        )
        == 0
    )
    assert len(rows(tmp_path / "other" / "train.jsonl")) == 1
    stats = json.loads((tmp_path / "other" / "stats.json").read_text())
    assert stats["options"]["keep_flagged_reasons"] == ["Inaccurate", "Other"]
    args = build_parser(command="export").parse_args(
        ["export", "dpo", "--source", "x", "--out", "y", "--keep-flagged-reasons", ""]
    )
    assert args.keep_flagged_reasons == ()


def test_cli_messages(tmp_path):
    log = Log()
    log.rate(log.turn("conv-liked", 0, [("user", "Hi")], "Hello!"), "like")
    data_dir = log.write(tmp_path / "data")
    assert run_cli("sft", "--source", str(data_dir), "--out", str(tmp_path / "pc"), "--test-size", "0") == 0
    assert rows(tmp_path / "pc" / "train.jsonl") == [
        {"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hello!"}]}
    ]
    assert (
        run_cli("sft", "--source", str(data_dir), "--out", str(tmp_path / "m"), "--test-size", "0", "--messages") == 0
    )
    assert rows(tmp_path / "m" / "train.jsonl") == [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
    ]
