"""The foundation every other package stands on; it imports none of them.

- `errors`: the error hierarchy (stable codes, file/line/column, caret line).
- `ir`: the compiled-trial model, frozen pydantic nodes (data only).
- `patient`: the one patient model all readers produce.
- `cache`: the on-disk cache directory and its entry files.
"""
__all__ = ["cache", "errors", "ir", "patient"]
