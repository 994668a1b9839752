"""Small Arrow helpers shared by the rules (``feedback.rules``) and the exports."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


class RowTaker:
    """Takes a few rows at a time from a table with many chunks, at the cost of the rows taken.

    ``pyarrow.Table.take`` on a table of many chunks may concatenate whole columns per call; this
    takes from each record batch separately.
    """

    def __init__(self, table: pa.Table) -> None:
        self.schema = table.schema
        self.batches = table.to_batches()
        self.starts = np.cumsum([0] + [len(batch) for batch in self.batches[:-1]]).astype(np.int64)

    def take(self, positions: np.ndarray) -> pa.Table:
        """The rows at ``positions`` (int64, any order, repeats allowed), in that order."""
        positions = np.asarray(positions, dtype=np.int64)
        if len(positions) == 0:
            return self.schema.empty_table()
        which = np.searchsorted(self.starts, positions, side="right") - 1
        order = np.argsort(which, kind="stable")
        pieces = []
        for group in np.split(order, np.flatnonzero(np.diff(which[order])) + 1):
            chunk = which[group[0]]
            pieces.append(self.batches[chunk].take(pa.array(positions[group] - self.starts[chunk])))
        table = pa.Table.from_batches(pieces, schema=self.schema)
        return table.take(pa.array(np.argsort(order, kind="stable")))


def single_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One contiguous array of a column (no copy when it already is one chunk)."""
    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column


def bool_numpy(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow column as a numpy bool array (nulls must have been filled)."""
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
