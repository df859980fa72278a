"""The packaged registry data files (eligibility/data/), in the order they are read.

A later entry with the same id replaces an earlier one; users' `--registry`
files come after these.  Kept free of imports: the compiled-trial cache digests
these files on every start-up without loading the registry.
"""
PACKAGED_FILES = ("registry.toml", "conditions.toml", "drugs.toml", "procedures.toml")
