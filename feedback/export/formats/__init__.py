"""The export formats: one module per format in this folder, each defining ``FORMAT`` (a spec).

``sft`` (TRL prompt-completion, or language modeling with ``messages``), ``dpo`` (preference), ``kto``
(unpaired preference) and ``flags`` (the review queue). A spec (``feedback.export.formats.spec``) holds
the format's columns, which replies it leaves out and why, how its rows are built and its dataset-card
text; nothing else in the export names a format.

Adding a format is adding one module here that defines ``FORMAT``: it is found when this package
is imported, and the CLI, ``export_records``, ``stats.json`` and the dataset card take it from there.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from feedback.export.formats.spec import ExportFormat, PairFormat, ReplyFormat

if TYPE_CHECKING:
    from feedback.export.options import ExportOptions


def _discover() -> dict[str, ExportFormat]:
    """Every ``FORMAT`` defined by a module of this package, by name, in ``order``.

    Raises:
        ValueError: when two modules define formats of the same name.
    """
    found: dict[str, ExportFormat] = {}
    for info in pkgutil.iter_modules(__path__):
        spec = getattr(importlib.import_module(f"{__name__}.{info.name}"), "FORMAT", None)
        if isinstance(spec, ExportFormat):
            if spec.name in found:
                raise ValueError(f"two export formats are named {spec.name!r}")
            found[spec.name] = spec
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


REGISTRY = _discover()
"""Format name -> its spec."""
FORMATS = tuple(REGISTRY)
"""Names of the export formats, in listing order (``sft``, ``dpo``, ``kto``, ``flags``)."""


def get_format(name: str, options: ExportOptions | None = None) -> ExportFormat:
    """The spec of the format named ``name``; with ``options``, the variant they ask for
    (:meth:`ExportFormat.resolve`: ``sft`` with ``messages=True`` is TRL's language-modeling format).

    Raises:
        ValueError: for an unknown name, naming the formats.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown export format {name!r}; expected one of {', '.join(FORMATS)}")
    return REGISTRY[name].resolve(options)


__all__ = ["FORMATS", "REGISTRY", "ExportFormat", "PairFormat", "ReplyFormat", "get_format"]
