"""Privacy steps of the write gate (:meth:`feedback.recorder.FeedbackRecorder.write`).

- :mod:`feedback.privacy.consent`: :class:`ConsentGate` keeps every record of a conversation
  whose user declined (or, with ``FEEDBACK_CONSENT=required``, did not agree) out of the data dir.
- :mod:`feedback.privacy.redaction`: :class:`Redactor` replaces emails, phone numbers, card
  numbers, IP addresses, IBANs and URLs with credentials by typed placeholders (``<EMAIL>``, ...)
  in every record before it reaches a shard (``FEEDBACK_REDACT=on``).

Both are plain gate steps (``Record -> Record | None``); :func:`feedback.app.create_app` puts the
consent step first, so nothing is redacted that is not going to be written anyway. Importing this
package imports neither Presidio nor spaCy: the redactor loads them when it is built.
"""

from __future__ import annotations

from feedback.privacy.consent import ConsentGate, ConsentMode, check_consent
from feedback.privacy.redaction import PLACEHOLDERS, Redactor

__all__ = ["PLACEHOLDERS", "ConsentGate", "ConsentMode", "Redactor", "check_consent"]
