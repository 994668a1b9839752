"""``python -m feedback delete --conversation ID [--conversation ID2 ...] [--source DIR|owner/name]
[--purge-history] [--yes]``: delete conversations, as an operator.

- A data dir (``--source DIR``, default ``$FEEDBACK_DATA_DIR``, else the app's default data dir): a deletion
  record per conversation is appended (``deletions/``), then every shard holding them is rewritten without
  them, the uploaded files no other conversation uses are removed and the conversation index is updated
  (``feedback.privacy.deletion.erase_local``). Every repo the dir was pushed to (its push ledgers) is owed
  the erasure: the app's sync makes it before its next push, shards it had pushed count as pushed at
  their new size so nothing erased goes up again. A dir an app is serving is refused (exit 1): delete
  through that app (its "Forget this conversation", ``/forget``, its review page), or stop it first.
- A dataset repo (``--source owner/name``): one commit adds the deletion records (``deletions/{day}/``,
  Parquet) and replaces every file holding the conversations (:func:`feedback.hub.erase.erase_from_repo`);
  replicas syncing to the repo read the records and erase their own copies before their next push.
  ``--purge-history`` then discards the history that still holds them (squash of ``main``, the conversion
  branches), after printing what it discards and asking (unless ``--yes``).

Exit codes: 0 done, 1 failed (nothing held a conversation, the Hub refused, the purge was declined or
refused in part), 2 bad usage (a malformed id, a source that is neither a dir nor a repo id,
``--purge-history`` on a dir).
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path

from feedback.cli.hub import TIMEOUT_HELP, TOKEN_HELP, timeout_argument
from feedback.hub.client import failure_reason, is_repo_id
from schemas.records import is_valid_id

CONFIRM_WORD = "yes"


class _Unknown(Exception):
    """Conversations a source holds no record of (nothing is changed)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``delete`` command."""
    delete = subparsers.add_parser("delete", help="delete conversations from a data dir or a dataset repo")
    delete.add_argument(
        "--conversation",
        action="append",
        required=True,
        metavar="ID",
        help="the conversation id to delete (repeat for several)",
    )
    delete.add_argument(
        "--source",
        default=None,
        metavar="DIR|owner/name",
        help="a data dir, or owner/name of a dataset repo (default: $FEEDBACK_DATA_DIR, else ./data)",
    )
    delete.add_argument(
        "--purge-history",
        action="store_true",
        help="(repo) also discard the repo's history that still holds them: squash main into one "
        "commit and delete the conversion branches (refs/convert/...)",
    )
    delete.add_argument("--yes", action="store_true", help="do not ask before purging the history")
    delete.add_argument("--token", default=None, help=TOKEN_HELP)
    delete.add_argument("--timeout", type=timeout_argument, default=None, metavar="SECONDS", help=TIMEOUT_HELP)
    delete.set_defaults(func=run_delete)


def _usage(message: str) -> int:
    print(f"delete: {message}", file=sys.stderr)
    return 2


def run_delete(args: argparse.Namespace) -> int:
    """Run ``delete``; prints what it did, or why it failed (one line, no secret). Returns 0, 1 or 2."""
    from schemas.settings import default_data_dir

    bad = [cid for cid in args.conversation if not is_valid_id(cid)]
    if bad:
        return _usage(f"malformed conversation id {bad[0][:80]!r}: use 8-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    ids = list(dict.fromkeys(args.conversation))
    source = args.source or os.environ.get("FEEDBACK_DATA_DIR") or str(default_data_dir())
    path = Path(source).expanduser()
    if path.is_dir():
        if args.purge_history:
            return _usage("--purge-history needs a dataset repo (--source owner/name): a data dir keeps no history")
        return _delete_local(path, ids)
    if not is_repo_id(source):
        return _usage(f"SOURCE {source!r} is neither a data dir nor a Hub dataset repo id (owner/name)")
    return _delete_repo(source, ids, args)


def _delete_local(data_dir: Path, ids: list[str]) -> int:
    """Delete conversations from a data dir (see the module docstring); refused while an app serves it."""
    from feedback.privacy.deletion import DataDirInUse, exclusive_use

    try:
        with exclusive_use(data_dir):
            return _delete_local_unused(data_dir, ids)
    except DataDirInUse as error:
        print(f"delete failed: {error}")
        return 1


def _delete_local_unused(data_dir: Path, ids: list[str]) -> int:
    """:func:`_delete_local` with the data dir's in-use lock held."""
    from feedback.hub.files import LEDGER_DIR, ErasureLedger, PushLedger, mark_erased
    from feedback.privacy.deletion import erase_local, note_erased
    from feedback.recorder import FeedbackRecorder
    from feedback.store import FeedbackStore
    from schemas.records import Deletion
    from schemas.settings import DEFAULT_FLAG_REASONS

    store = FeedbackStore(data_dir)
    recorder = FeedbackRecorder(store, flag_reasons=DEFAULT_FLAG_REASONS)
    try:
        index = recorder.index
        unknown = [cid for cid in ids if index.is_deleted(cid) or not index.on_disk(cid)]
        if unknown:
            print(
                f"delete failed: {data_dir} holds no turn of conversation {', '.join(unknown)} "
                "(never recorded, or already deleted): nothing deleted"
            )
            return 1
        for cid in ids:
            recorder.write(Deletion(conversation_id=cid, requested_by="operator"))
        local = erase_local(store, ids, index=index)  # the index forgets them first
        note_erased(data_dir, ids)  # the app's Eraser: done
        repos = []
        for ledger_file in sorted((data_dir / LEDGER_DIR).glob("*.tsv")):
            repo_id = ledger_file.stem.replace("__", "/", 1)
            if not is_repo_id(repo_id):
                continue
            mark_erased(local.rewritten, local.removed, PushLedger(data_dir, repo_id))
            erasures = ErasureLedger(data_dir, repo_id)
            erasures.pending |= set(ids)
            erasures.applied |= set(ids)
            erasures.save()
            repos.append(repo_id)
    except Exception as error:  # noqa: BLE001 - report any failure in one line
        print(f"delete failed: {failure_reason(error)}")
        return 1
    finally:
        recorder.close()
        store.close()
    print(
        f"deleted {len(ids)} conversation(s) from {data_dir}: {local.records} records, "
        f"{len(local.rewritten)} shards rewritten, {len(local.removed)} removed, {len(local.files)} uploaded files"
    )
    for repo_id in repos:
        print(
            f"{repo_id}: erased by the app's sync before its next push "
            f"(or now: python -m feedback delete --source {repo_id} "
            + " ".join(f"--conversation {c}" for c in ids)
            + ")"
        )
    return 0


def _delete_repo(repo_id: str, ids: list[str], args: argparse.Namespace) -> int:
    """Delete conversations from a dataset repo (see the module docstring)."""
    from feedback.hub.client import hub_api, hub_token, use_hub_timeout
    from feedback.hub.erase import HistoryPurge, RepoErasure, deletion_operation, erase_from_repo, purge_plan
    from schemas.records import Deletion

    def add_if(found: RepoErasure) -> list:
        unknown = [cid for cid in ids if cid not in found.found and cid not in found.recorded]
        if unknown:
            raise _Unknown(f"{repo_id} holds no record of conversation {', '.join(unknown)} (nothing deleted)")
        new = [Deletion(conversation_id=cid, requested_by="operator") for cid in ids if cid not in found.recorded]
        return [deletion_operation(new, writer=uuid.uuid4().hex[:12])] if new else []

    def confirm(plan: HistoryPurge) -> bool:
        print(f"{repo_id}: {plan.describe()}")
        return True

    try:
        use_hub_timeout(args.timeout)
        api = hub_api(hub_token(args.token))
        if args.purge_history:
            plan = purge_plan(api, repo_id)
            print(f"{repo_id}: after the erasure commit, {plan.describe()}")
            print("The discarded revisions cannot be recovered.")
            if not args.yes and not _ask(f"Type '{CONFIRM_WORD}' to go on: "):
                print("delete cancelled: nothing changed")
                return 1
        result = erase_from_repo(
            repo_id, ids, api=api, add_if=add_if, purge_history=args.purge_history, confirm=confirm
        )
    except _Unknown as error:
        print(f"delete failed: {error}")
        return 1
    except Exception as error:  # noqa: BLE001 - report any failure in one line, without the token
        print(f"delete failed: {failure_reason(error)}")
        return 1
    print(f"deleted {len(ids)} conversation(s) from {repo_id}: {result.summary()}")
    if result.purge is not None and result.purge.refused:
        for ref, why in result.purge.refused.items():
            print(f"the Hub refused to delete {ref}: {why}; its commits may still hold the deleted conversations")
        return 1
    return 0


def _ask(prompt: str) -> bool:
    try:
        return input(prompt).strip().lower() == CONFIRM_WORD
    except EOFError:
        return False
