"""A small Hugging Face Hub-compatible HTTP server for offline tests.

The real ``huggingface_hub`` and ``datasets`` clients can create repos, commit (regular and LFS
files), list trees and commits, and download files against it.  Every commit is an immutable
snapshot addressable by its 40-hex oid.  Blobs and the commit history are kept on disk under the
directory given to :class:`HubServer`, so a new server started on the same directory sees the
same repos.

Usage::

    from support.hub import running_hub

    with running_hub(tmp_path) as hub:
        api = HfApi(endpoint=hub.endpoint, token="hf_test")
        api.create_repo("me/logs", repo_type="dataset")
        hub.fail(503, times=1)          # the next write request answers 503
        hub.files("me/logs")            # {".gitattributes": b"..."}

Branches: ``create_branch``, ``delete_branch``, ``list_repo_refs`` (conversion branches made by
:meth:`HubServer.convert_branch` are listed as ``converts``) and ``super_squash_history`` (the commits
no ref reaches any more are forgotten at once, as the Hub's garbage collection does later).

Wire format reference: ``shared/docs/hub-api.md``.  Not supported: pull requests, tags, Xet storage
(clients must use ``HF_HUB_DISABLE_XET=1`` for files that preupload answers as ``"lfs"``), multipart
LFS uploads, gated repos, ``expand=true`` metadata (last commit, security).
"""

from support.hub.faults import RequestRecord
from support.hub.server import HubServer, running_hub
from support.hub.storage import git_blob_sha1

__all__ = ["HubServer", "RequestRecord", "git_blob_sha1", "running_hub"]
