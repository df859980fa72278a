"""Where the tests find the project's shared samples.

tests/shared/ holds copies of the shared real-format samples (Synthea and OMOP
CDM extracts of synthetic patients, a FHIR Bundle, the criteria corpora and the
example trials; sources and licences in tests/shared/data/README.md and
tests/shared/corpus/README.md), so a clean clone tests the same data as the
development machine.  ELIGIBILITY_SHARED points elsewhere (e.g. ../shared).
"""
from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(os.environ.get("ELIGIBILITY_SHARED") or Path(__file__).resolve().parent / "shared")
