"""Everything this app sends to or reads from the Hugging Face Hub, one module per concern.

- :mod:`feedback.hub.client`: the token look-up, the endpoint, the repo-id check, and the network
  timeout every Hub call of the process gets (``FEEDBACK_HUB_TIMEOUT``).
- :mod:`feedback.hub.files`: which files of a data dir are synced (complete lines only) and
  writing the dataset card into it.
- :mod:`feedback.hub.card`: the dataset card's text (configs and features per record kind).
- :mod:`feedback.hub.sync`: the running app's sync (``HubSync``, a ``CommitScheduler`` subclass).
- :mod:`feedback.hub.transfer`: one-off ``push`` and ``pull`` of a data dir, and pushing an
  export's ``DatasetDict``.
- :mod:`feedback.hub.layout`: where records live in the repo (Parquet, partitioned by day) and the
  conversion of a pushed shard.
- :mod:`feedback.hub.compact`: compaction (a closed day's files merged, commits of at most 100 files)
  and :mod:`feedback.hub.flagged`, the ``flagged`` review view it writes.
- :mod:`feedback.hub.erase`: erasing deleted conversations from a repo (one commit), and purging its history.
- :mod:`feedback.hub.remote`: a repo read in place through ``HfFileSystem`` (the review index's source,
  the export's file list).
- :mod:`feedback.hub.source`: a dataset repo as a source of records (read in place, or a working copy).

Nothing is imported here: ``import feedback.hub.sync`` does not pull in ``datasets``.
"""
