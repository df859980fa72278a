"""Results of a DuckDB query streamed to CSV through Arrow, counted on the way.

DuckDB's own ordered `COPY ... TO` keeps threads waiting for the batch that is
next in input order, and the summary then needs a second pass over the written
file.  Streaming the result as Arrow record batches (DuckDB keeps them in input
order) lets one thread write while DuckDB computes the next batches, and the
summary counts come from each batch as it passes: one pass, bounded memory.

Every field of a row is quoted (pyarrow's `all_valid` style; the Python
engine's csv.QUOTE_ALL writes the same bytes), the header is plain names, so
both engines give identical files.
"""
from __future__ import annotations

from collections import Counter

ROWS_PER_BATCH = 1 << 17


class Tally:
    """Rows, verdict counts and outcome counts per criterion, from the batches written."""

    def __init__(self, criteria: list[str]):
        self.criteria = criteria
        self.rows = 0
        self.verdicts: Counter = Counter()
        self.outcomes: dict[str, Counter] = {cid: Counter() for cid in criteria}

    def add(self, batch) -> None:
        try:
            # the kernel registry itself: pyarrow.compute first wraps ~300 functions (~50 ms of start-up)
            from pyarrow._compute import call_function
        except ImportError:   # pragma: no cover - a pyarrow without the private module
            from pyarrow.compute import call_function

        self.rows += batch.num_rows
        for name, counter in [("verdict", self.verdicts), *self.outcomes.items()]:
            for item in call_function("value_counts", [batch.column(name)]).to_pylist():
                counter[item["values"]] += item["counts"]


class QueryFailed(Exception):
    """DuckDB gave up while producing rows (bad bytes, a row it cannot pad): the message is DuckDB's."""


def write_csv(con, select: str, target: str, criteria: list[str]) -> Tally:
    """Run `select` on the DuckDB connection and write its rows to `target` (a path) as CSV with a header.

    A failure while producing rows raises QueryFailed, possibly after earlier
    batches were written (the caller rewrites or discards the file); a failure
    to write raises OSError.
    """
    import pyarrow.csv as pcsv

    # a view first: con.sql() tokenises its text in Python, which for the whole query costs more
    # start-up than the statement that runs it
    con.execute(f"CREATE OR REPLACE TEMP VIEW eligibility_results AS {select}")
    try:
        reader = con.sql("SELECT * FROM eligibility_results").to_arrow_reader(ROWS_PER_BATCH)
    except Exception as exc:   # the first batches are produced here already
        raise QueryFailed(str(exc)) from None
    tally = Tally(criteria)
    options = pcsv.WriteOptions(include_header=False, quoting_style="all_valid")
    with open(target, "wb") as sink, pcsv.CSVWriter(sink, reader.schema, write_options=options) as writer:
        # the header as plain names (they never need quotes), the rows with every field quoted
        sink.write((",".join(reader.schema.names) + "\n").encode("utf-8"))
        sink.flush()
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except Exception as exc:   # DuckDB's error, re-raised by Arrow as OSError
                raise QueryFailed(str(exc)) from None
            writer.write_batch(batch)
            tally.add(batch)
    return tally
