"""chat-feedback: a chat app that records every turn, rating and flag (``python app.py``).

Configuration comes from the environment (``FEEDBACK_*``, see the README); with none, it answers
with the echo responder and logs to ``./data``. With ``FEEDBACK_DATASET_REPO`` and ``HF_TOKEN``
it also syncs the records to that Hugging Face dataset repo. The same app as ``chat-feedback serve``
(or ``python -m feedback serve``) from an installed copy: :func:`feedback.cli.serve.main`.
"""

import sys

from feedback.cli.serve import main

if __name__ == "__main__":
    sys.exit(main())
