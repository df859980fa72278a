"""Results of a DuckDB query streamed to CSV or Parquet through Arrow, counted on the way.

DuckDB's own ordered `COPY ... TO` keeps threads waiting for the batch that is
next in input order, and the summary then needs a second pass over the written
file.  Streaming the result as Arrow record batches (DuckDB keeps them in input
order) lets one thread write while DuckDB computes the next batches, and the
summary counts come from each batch as it passes: one pass, bounded memory.

Every field of a CSV row is quoted (pyarrow's `all_valid` style; the Python
engine's csv.QUOTE_ALL writes the same bytes), the header is plain names, so
both engines give identical files.  Parquet files hold the same columns, every
one a UTF-8 string column as the CSV's text is; the Python engine writes them
through `ParquetRows`, in batches, with the same writer settings.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from eligibility.core.errors import EligibilityError

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


FORMATS = ("csv", "jsonl", "parquet")
COLUMNS = ("reasons", "outcomes")


class OutputOptionError(EligibilityError):
    """Output options that do not go together (the CLI reports it as a usage error)."""

    code = "E-OUTPUT-OPTIONS"


def check_output(output: str | None, fmt: str, columns: str = "reasons") -> None:
    """Refuse an output request no engine can honour, before any row is read."""
    if fmt not in FORMATS:
        raise OutputOptionError(f"output format {fmt!r} is not one of {', '.join(FORMATS)}")
    if columns not in COLUMNS:
        raise OutputOptionError(f"columns {columns!r} is not one of {', '.join(COLUMNS)}")
    if fmt == "parquet" and output is None:
        raise OutputOptionError("Parquet output needs a file (-o results.parquet), not stdout")
    if fmt == "jsonl" and columns != "reasons":
        raise OutputOptionError("--columns outcomes applies to CSV and Parquet output; a JSONL record always "
                                "carries its explanations")


# zstd: results are mostly a few repeated words (pass, review) and long repeated reasons, which it
# packs several times smaller than the default snappy at about the same writing speed
PARQUET_COMPRESSION = "zstd"


def results_schema(names: list[str]):
    """The Arrow schema of a results file: every column a (nullable) UTF-8 string, as the CSV's text."""
    import pyarrow as pa

    return pa.schema([pa.field(name, pa.string()) for name in names])


def parquet_writer(target, schema):
    """The one Parquet writer configuration both engines use."""
    import pyarrow.parquet as pq

    return pq.ParquetWriter(target, schema, compression=PARQUET_COMPRESSION)


def write_csv(con, select: str, target: str, criteria: list[str]) -> Tally:
    """Run `select` on the DuckDB connection and write its rows to `target` (a path) as CSV with a header.

    A failure while producing rows raises QueryFailed, possibly after earlier
    batches were written (the caller rewrites or discards the file); a failure
    to write raises OSError.
    """
    return write_results(con, select, target, criteria, fmt="csv")


def write_results(con, select: str, target: str, criteria: list[str], *, fmt: str = "csv") -> Tally:
    """`write_csv`, or with fmt="parquet" the same rows as a Parquet file of string columns."""
    # a view first: con.sql() tokenises its text in Python, which for the whole query costs more
    # start-up than the statement that runs it
    con.execute(f"CREATE OR REPLACE TEMP VIEW eligibility_results AS {select}")
    try:
        reader = con.sql("SELECT * FROM eligibility_results").to_arrow_reader(ROWS_PER_BATCH)
    except Exception as exc:   # the first batches are produced here already
        raise QueryFailed(str(exc)) from None
    tally = Tally(criteria)
    with _batch_sink(target, reader.schema, fmt) as write:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except Exception as exc:   # DuckDB's error, re-raised by Arrow as OSError
                raise QueryFailed(str(exc)) from None
            write(batch)
            tally.add(batch)
    return tally


@contextmanager
def _batch_sink(target: str, schema, fmt: str) -> Iterator[Callable]:
    """A function writing one record batch to `target`, open for the duration of the block."""
    if fmt == "parquet":
        wanted = results_schema(schema.names)
        with parquet_writer(target, wanted) as writer:
            if schema.equals(wanted):
                yield writer.write_batch
            else:   # another string layout (large or view strings): the file's types stay the CSV's
                import pyarrow as pa

                yield lambda batch: writer.write_batch(pa.RecordBatch.from_arrays(
                    [column.cast(pa.string()) for column in batch.columns], schema=wanted))
        return
    import pyarrow.csv as pcsv

    options = pcsv.WriteOptions(include_header=False, quoting_style="all_valid")
    with open(target, "wb") as sink, pcsv.CSVWriter(sink, schema, write_options=options) as writer:
        # the header as plain names (they never need quotes), the rows with every field quoted
        sink.write((",".join(schema.names) + "\n").encode("utf-8"))
        sink.flush()
        yield writer.write_batch


class ParquetRows:
    """Rows of strings written to a Parquet file in batches, so memory holds one batch, never the run."""

    def __init__(self, target: str, names: list[str], rows_per_batch: int = 1 << 14) -> None:
        self.names = names
        self.schema = results_schema(names)
        self.rows_per_batch = rows_per_batch
        self._columns: list[list[str]] = [[] for _ in names]
        self._writer = parquet_writer(target, self.schema)

    def write(self, row: list[str]) -> None:
        for column, value in zip(self._columns, row, strict=True):
            column.append(value)
        if len(self._columns[0]) >= self.rows_per_batch:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._columns[0]:
            arrays = [pa.array(column, type=pa.string()) for column in self._columns]
            self._writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
            self._columns = [[] for _ in self.names]

    def close(self) -> None:
        """Write the last rows and the file's footer (an empty run still gives a file with the columns)."""
        self._flush()
        self._writer.close()

    def __enter__(self) -> ParquetRows:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
