"""eligibility/data/conditions.toml: shape, uniqueness, and every ICD-10-CM code against the code book.

The structural checks need only tomllib.  The code-book checks read the CDC/NCHS ICD-10-CM tabular list
through `simple-icd-10-cm` (FY2026 release in version 1.5.0); they are skipped where it is not installed.
The expected titles and mappings below are facts of the code book and of clinical coding, written down
independently of the data file.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "eligibility" / "data"
CONDITIONS = DATA / "conditions.toml"

# Single letters used as prefixes: the code range each stands for, and the code-book item (block or
# chapter) whose title names that range.  The tabular list's "C00-C96" block is a heading with no
# children of its own, so ranges are checked by code order rather than by descent.
LETTER_RANGES = {"C": "C00-C96", "I": "I00-I99"}
LETTER_ITEMS = {"C": "C00-C96", "I": "9"}
CODE_FORMAT = re.compile(r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?")
ID_FORMAT = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
CONDITION_KEYS = {"id", "name", "synonyms", "icd10", "snomed", "omop"}
AMBIGUOUS_KEYS = {"text", "senses", "note"}
# Two-letter synonyms are allowed only after someone has checked that criteria use them in one sense.
TWO_LETTER_OK = {"af", "mi", "hf", "tb", "oa"}
# Everyday words that must never name a condition on their own.
ENGLISH = {
    "as", "ad", "all", "aids", "pad", "hit", "gist", "mash", "pots", "cap", "add", "net", "fits", "lead",
    "cup", "std", "he", "it", "is", "or", "on", "at", "in", "an", "be", "me", "us", "am", "so", "no", "do",
}


def _load() -> dict:
    with CONDITIONS.open("rb") as fh:
        return tomllib.load(fh)


DOC = _load()
ENTRIES: list[dict] = DOC["condition"]
AMBIGUOUS: list[dict] = DOC.get("ambiguous", [])
BY_ID = {e["id"]: e for e in ENTRIES}


def _flat(code: str) -> str:
    return code.replace(".", "").upper()


def _covers(entry: dict, code: str) -> bool:
    """The matcher's rule: a listed code stands for itself and every code that starts with it."""
    return any(_flat(code).startswith(_flat(prefix)) for prefix in entry["icd10"])


def _entry_with(phrase: str) -> dict:
    hits = [e for e in ENTRIES if phrase in e["synonyms"]]
    assert len(hits) == 1, f"{phrase!r} is a synonym of {len(hits)} entries"
    return hits[0]


# -- shape and uniqueness (no code book needed) --------------------------------------------------

def test_file_has_the_promised_coverage():
    assert len(ENTRIES) >= 150
    assert set(DOC) == {"condition", "ambiguous"}


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.get("id", "?"))
def test_entry_shape(entry):
    assert set(entry) <= CONDITION_KEYS and {"id", "name", "synonyms", "icd10"} <= set(entry)
    assert ID_FORMAT.fullmatch(entry["id"]), entry["id"]
    assert entry["name"].strip() == entry["name"] and entry["name"]
    assert entry["synonyms"] and entry["icd10"]
    for code in entry["icd10"]:
        assert code in LETTER_RANGES or CODE_FORMAT.fullmatch(code), code
    for sid in entry.get("snomed", []):
        assert re.fullmatch(r"[1-9][0-9]{5,17}", sid), sid
    assert all(isinstance(o, int) for o in entry.get("omop", []))


def test_ids_unique():
    ids = [e["id"] for e in ENTRIES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_synonyms_lowercase_trimmed_and_owned_by_one_entry():
    owner: dict[str, str] = {}
    for e in ENTRIES:
        assert len(e["synonyms"]) == len(set(e["synonyms"])), e["id"]
        for s in e["synonyms"]:
            assert s == s.lower(), s
            assert s == " ".join(s.split()), repr(s)
            assert s not in owner, f"{s!r} in {owner.get(s)} and {e['id']}"
            owner[s] = e["id"]
    # the registry also matches display names, so a name may not be another entry's synonym or name
    for e in ENTRIES:
        assert owner.get(e["name"].lower(), e["id"]) == e["id"], e["name"]
    names = [e["name"].lower() for e in ENTRIES]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


def test_no_everyday_word_or_unvetted_short_abbreviation_is_a_synonym():
    for e in ENTRIES:
        for s in e["synonyms"]:
            assert s not in ENGLISH, (e["id"], s)
            if len(s) <= 2:
                assert s in TWO_LETTER_OK, (e["id"], s)


def test_ambiguous_entries_name_defined_conditions_and_are_never_synonyms():
    synonyms = {s for e in ENTRIES for s in e["synonyms"]} | {e["name"].lower() for e in ENTRIES}
    texts = [a["text"] for a in AMBIGUOUS]
    assert len(texts) == len(set(texts))
    for a in AMBIGUOUS:
        assert set(a) <= AMBIGUOUS_KEYS and a["text"] == a["text"].lower()
        assert a["text"] not in synonyms, a["text"]
        assert a["senses"] and len(a["senses"]) == len(set(a["senses"]))
        for sense in a["senses"]:
            assert sense in BY_ID, (a["text"], sense)
        # one clinical sense is only ambiguous because of a non-clinical reading, which must be stated
        if len(a["senses"]) == 1:
            assert a.get("note"), a["text"]


def test_the_abbreviations_with_two_clinical_readings_are_ambiguous():
    texts = {a["text"]: set(a["senses"]) for a in AMBIGUOUS}
    assert texts["ms"] == {"multiple_sclerosis", "mitral_stenosis"}
    assert texts["as"] == {"aortic_stenosis", "ankylosing_spondylitis"}
    assert texts["ad"] == {"alzheimers_disease", "atopic_dermatitis"}
    assert {"parkinsons_disease", "peritoneal_dialysis"} <= texts["pd"]
    assert {"pulmonary_embolism", "preeclampsia"} <= texts["pe"]
    for text in ("ra", "cp", "mr", "ca", "cf", "chd", "all", "aids"):
        assert text in texts


def test_every_registry_condition_is_here_under_the_same_id():
    with (DATA / "registry.toml").open("rb") as fh:
        registry = tomllib.load(fh)
    missing = [c["id"] for c in registry.get("condition", []) if c["id"] not in BY_ID]
    assert not missing


def test_no_code_is_already_covered_by_another_code_of_its_entry():
    for e in ENTRIES:
        for a in e["icd10"]:
            for b in e["icd10"]:
                assert a == b or not _flat(b).startswith(_flat(a)), (e["id"], a, b)


# Independently known coding facts: (phrase, a code it must cover, a code it must not cover or None).
MAPPINGS = [
    ("esrd", "N18.6", "N18.3"),
    ("ckd", "N18.30", None),
    ("ckd", "N18.6", None),
    ("cad", "I25.10", "I21.4"),
    ("heart attack", "I21.4", "I25.2"),
    ("old mi", "I25.2", "I21.9"),
    ("afib", "I48.91", "I48.92"),
    ("atrial flutter", "I48.92", "I48.0"),
    ("copd", "J44.9", "J45.909"),
    ("hypertension", "I10", None),
    ("hypertension", "I12.9", None),          # hypertensive CKD is coded instead of I10
    ("essential hypertension", "I10", "I12.9"),
    ("obesity", "E66.9", "E66.3"),            # E66.3 is overweight
    ("sickle cell disease", "D57.1", "D57.3"),  # D57.3 is the trait
    ("tia", "G45.9", "G45.4"),                # G45.4 is transient global amnesia
    ("mini-stroke", "G45.9", None),
    ("stroke", "I63.9", "G45.9"),
    ("hemorrhagic stroke", "I61.9", "I63.9"),
    ("kidney failure", "N19", None),
    ("hiv", "B20", None),
    ("hiv", "Z21", None),
    ("gestational diabetes", "O24.410", "O24.011"),
    ("diabetes", "E11.9", "O24.410"),
    ("type 2 diabetes", "E11.65", "E10.9"),
    ("malignancy", "C50.911", "D05.10"),      # carcinoma in situ is not malignant
    ("dcis", "D05.10", "C50.911"),
    ("atrial septal defect", "Q21.11", "Q21.12"),  # Q21.12 is patent foramen ovale
    ("glaucoma", "H40.1110", "H40.051"),     # ocular hypertension is a glaucoma suspect
    ("tuberculosis", "A15.0", "Z22.7"),
    ("ltbi", "Z22.7", "A15.0"),
    ("hepatitis c", "B18.2", "B18.1"),
    ("chronic hepatitis b", "B18.1", "B16.9"),
    ("cirrhosis", "K74.60", "K74.0"),        # K74.0 is fibrosis without cirrhosis
    ("nafld", "K76.0", None),
    ("nash", "K75.81", "K76.0"),
    ("dvt", "I82.401", "I26.99"),
    ("pulmonary embolism", "I26.99", "I82.401"),
    ("vte", "I26.99", None),
    ("vte", "I82.401", None),
    ("aml", "C92.00", "C91.00"),
    ("aml", "C92.40", None),                 # acute promyelocytic leukaemia is an AML
    ("cll", "C91.10", "C92.10"),
    ("cml", "C92.10", "C91.10"),
    ("multiple myeloma", "C90.00", "D47.2"),
    ("mgus", "D47.2", "C90.00"),
    ("brain metastases", "C79.31", "C71.9"),
    ("hcc", "C22.0", "C22.1"),
    ("crohn's disease", "K50.90", "K51.90"),
    ("ulcerative colitis", "K51.90", "K50.90"),
    ("rheumatoid arthritis", "M06.9", "M06.1"),  # M06.1 is adult-onset Still's disease
    ("ankylosing spondylitis", "M45.9", "M45.A0"),
    ("ptsd", "F43.10", None),
    ("adhd", "F90.9", None),
    ("pcos", "E28.2", None),
    ("osa", "G47.33", "G47.31"),
    ("ipf", "J84.112", "J84.10"),
    ("uti", "N39.0", None),
    ("covid-19", "U07.1", None),
    ("anemia", "D64.9", "D57.3"),
    ("thrombocytopenia", "D69.6", None),
    ("parkinson's disease", "G20.A1", "G20.C"),
    ("migraine", "G43.909", "G43.A0"),       # G43.A is cyclical vomiting
    ("alcohol use disorder", "F10.20", "F11.20"),
]


@pytest.mark.parametrize(("phrase", "inside", "outside"), MAPPINGS)
def test_phrases_map_to_the_codes_clinical_coding_gives_them(phrase, inside, outside):
    entry = _entry_with(phrase)
    assert _covers(entry, inside), (phrase, inside, entry["icd10"])
    if outside is not None:
        assert not _covers(entry, outside), (phrase, outside, entry["icd10"])


# -- against the code book ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def cm():
    return pytest.importorskip("simple_icd_10_cm")


def test_every_code_is_a_category_or_subcategory_of_icd10cm(cm):
    bad = [
        (e["id"], code) for e in ENTRIES for code in e["icd10"]
        if code not in LETTER_RANGES and not (cm.is_category_or_subcategory(code) and cm.add_dot(code) == code)
    ]
    assert not bad


def test_letter_prefixes_coincide_with_their_part_of_the_code_book(cm):
    categories = {c for c in cm.get_all_codes() if cm.is_category(c)}
    for letter, code_range in LETTER_RANGES.items():
        low, high = code_range.split("-")
        with_letter = {c for c in categories if c.startswith(letter)}
        # within one letter, code-book order is string order (C4A sits between C44 and C45)
        assert with_letter and all(low <= c <= high for c in with_letter), letter
        assert cm.get_description(LETTER_ITEMS[letter]).endswith(f"({code_range})"), letter
        # and they share one chapter, which holds nothing else of that letter
        chapters = {cm.get_ancestors(c)[-1] for c in with_letter}
        assert len(chapters) == 1, (letter, chapters)


def test_code_comments_are_the_code_book_titles(cm):
    # each icd10 code carries its title as a comment; a stale or mistyped comment fails here
    seen = 0
    in_array = False
    for line in CONDITIONS.read_text(encoding="utf-8").splitlines():
        if line.startswith("icd10 = ["):
            in_array = not line.split("#")[0].rstrip().endswith("]")
            items = re.findall(r'"([^"]+)"', line.split("#")[0])
        elif in_array:
            if line.strip() == "]":
                in_array = False
                continue
            items = re.findall(r'"([^"]+)"', line.split("#")[0])
        else:
            continue
        if not items:
            continue
        assert len(items) == 1 and "#" in line, line
        code, comment = items[0], line.split("#", 1)[1].strip()
        assert comment == cm.get_description(LETTER_ITEMS.get(code, code)), line
        seen += 1
    assert seen == sum(len(e["icd10"]) for e in ENTRIES)


# Titles of the FY2026 code book, as printed in the CDC/NCHS tabular list.
TITLES = [
    ("I25", "Chronic ischemic heart disease"),
    ("I25.2", "Old myocardial infarction"),
    ("I21", "Acute myocardial infarction"),
    ("I10", "Essential (primary) hypertension"),
    ("I48", "Atrial fibrillation and flutter"),
    ("I50", "Heart failure"),
    ("I26", "Pulmonary embolism"),
    ("N18.6", "End stage renal disease"),
    ("N17", "Acute kidney failure"),
    ("G35", "Multiple sclerosis"),
    ("E11", "Type 2 diabetes mellitus"),
    ("E10", "Type 1 diabetes mellitus"),
    ("J44", "Other chronic obstructive pulmonary disease"),
    ("J84.112", "Idiopathic pulmonary fibrosis"),
    ("G47.33", "Obstructive sleep apnea (adult) (pediatric)"),
    ("E28.2", "Polycystic ovarian syndrome"),
    ("K50", "Crohn's disease [regional enteritis]"),
    ("M32", "Systemic lupus erythematosus (SLE)"),
    ("C50", "Malignant neoplasm of breast"),
    ("C61", "Malignant neoplasm of prostate"),
    ("C90.0", "Multiple myeloma"),
    ("U07.1", "COVID-19"),
]


@pytest.mark.parametrize(("code", "title"), TITLES)
def test_code_book_titles(cm, code, title):
    assert cm.get_description(code) == title


def test_code_book_hierarchy_and_absent_who_codes(cm):
    assert cm.get_parent("N18.6") == "N18"
    assert cm.get_parent("I25.2") == "I25"
    assert "I20-I25" in cm.get_ancestors("I25.10")
    assert cm.is_leaf("C61") and not cm.is_leaf("C50")
    # WHO ICD-10 codes that ICD-10-CM does not have: stroke NOS (CM puts it in I63.9) and unconfirmed TB
    assert not cm.is_valid_item("I64") and not cm.is_valid_item("A16")
    assert "Stroke NOS" in cm.get_inclusion_term("I63.9")
    assert "Hemophilia A" in cm.get_inclusion_term("D66")


def test_the_mapping_table_uses_real_codes(cm):
    codes = {c for _, inside, outside in MAPPINGS for c in (inside, outside) if c}
    assert not sorted(c for c in codes if not cm.is_valid_item(c))
