"""The vocabulary: the ICD-10-CM lexicon, phrase matching, record keys, the code-book hierarchy, user files.

Expected codes come from the ICD-10-CM FY2026 tabular list and the WHO ATC index,
not from the code under test.
"""
from __future__ import annotations

import pytest

from eligibility.compile.compiler import compile_criterion
from eligibility.core.errors import RegistryError
from eligibility.readers.observations import code_map
from eligibility.registry import icd10cm
from eligibility.registry.codes import code_keys, icd_ancestors, node_keys
from eligibility.registry.concepts import build_registry, default_registry
from eligibility.registry.vocabulary import vocabulary


@pytest.fixture(scope="module")
def vocab():
    return vocabulary(default_registry())


@pytest.mark.parametrize("term, codes", [
    ("asthma", ["J45"]),                         # J45 Asthma
    ("end stage renal disease", ["N18.6"]),      # N18.6 End stage renal disease
    ("obesity", ["E66"]),                        # E66.9 Obesity, unspecified -> the category
    ("multiple sclerosis", ["G35"]),             # G35 Multiple sclerosis
    ("hiatus hernia", ["K44"]),                  # K44 Includes: hiatus hernia (esophageal) (sliding)
    ("coronary artery disease", ["I25.1"]),      # I25.1 inclusion term "Coronary (artery) disease"
])
def test_code_book_terms(term, codes):
    assert icd10cm.lexicon()["terms"][term] == codes


@pytest.mark.parametrize("word", ["weeks", "donor", "child", "illness", "pres", "disease"])
def test_code_book_leaves_out_common_words_and_abbreviations(word):
    assert word not in icd10cm.lexicon()["terms"]


def test_ancestors_and_keys():
    assert icd_ancestors("I25.10") == ["I25.10", "I25.1", "I25", "I"]
    assert code_keys("atc", "C10AA05") >= {"atc:C10AA05", "atc:C10AA", "atc:C10A", "atc:C10"}
    assert code_keys("snomed", "44054006") == {"snomed:44054006"}
    assert node_keys("statin", {"atc": ("C10AA",)}) == {"statin", "atc:C10AA"}


def test_matching_is_leftmost_longest_on_word_boundaries(vocab):
    text = "prediabetes, chronic kidney disease stage 3 and type 2 diabetes mellitus"
    found = [(text[m.start:m.end], m.key) for m in vocab.find(text)]
    assert ("prediabetes", "prediabetes") in found
    assert all(span != "diabetes" for span, _ in found)      # not inside "prediabetes"
    assert ("type 2 diabetes mellitus", "type_2_diabetes") in found


def test_broader_entries_follow_the_code_book():
    broader = default_registry().broader
    assert "diabetes_mellitus" in broader["type_2_diabetes"]        # E11 within E08-E13
    assert "malignancy" in broader["breast_cancer"]                 # C50 within C00-C96
    assert "substance_use_disorder" in broader["alcohol_use_disorder"]
    assert "pregnancy" not in broader.get("miscarriage", ())         # a status is about now, not a history


def test_record_display_names_meet_registry_entries():
    codes = code_map(default_registry())
    keys = codes.conditions("SNOMED", "59621000", "Essential hypertension (disorder)")
    assert "hypertension" in keys and "icd10cm:I10" in keys
    # an unknown code with a display name the vocabulary knows is still known
    assert "coronary_artery_disease" in codes.conditions("SNOMED", "999999999", "Coronary heart disease (disorder)")
    assert codes.conditions("SNOMED", "999999999", "Frobnitz of the spleen (disorder)") == ()
    # lisinopril is an ACE inhibitor (WHO ATC C09AA03)
    tokens = codes.drug_tokens("314076", "lisinopril 10 MG Oral Tablet")
    assert "C09AA03" in tokens


@pytest.mark.parametrize("trial, resolved", [
    ("Inclusion Criteria:\n- Relapsing multiple sclerosis\nExclusion Criteria:\n- Progressive MS\n", True),
    ("Inclusion Criteria:\n- Age 18 or older\nExclusion Criteria:\n- Progressive MS\n", False),
])
def test_ambiguous_abbreviation_uses_the_trials_own_words(trial, resolved):
    start = trial.index("Progressive MS")
    result = compile_criterion(trial, start, start + len("Progressive MS"), section="exclusion")
    codes = [n.code for n in _walk(result.tree) if n.kind == "has"]
    assert (codes == ["multiple_sclerosis"]) if resolved else (codes == [] and result.status == "manual")


def _walk(node):
    yield node
    for child in getattr(node, "children", ()) or ():
        yield from _walk(child)
    if getattr(node, "child", None) is not None:
        yield from _walk(node.child)


def test_user_vocabulary_file_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "mine.toml"
    bad.write_text('[[condition]]\nid = "x"\nname = "x"\nsynonyms = ["a"\n', "utf-8")
    with pytest.raises(RegistryError) as err:
        build_registry(bad)
    assert str(err.value).startswith(f"{bad}:5: error E-REGISTRY-TOML")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[[condition]]\nid = "ok"\nname = "ok"\n\n[[condition]]\nid = "bad"\nname = "bad"\n'
                     'icd10 = 7\n', "utf-8")
    with pytest.raises(RegistryError) as err:
        build_registry(wrong)
    assert str(err.value).startswith(f"{wrong}:6: error E-REGISTRY-ENTRY: invalid entry 'bad': icd10:")


def test_user_vocabulary_file_extends_matching(tmp_path):
    extra = tmp_path / "site.toml"
    extra.write_text('[[condition]]\nid = "frobnitis"\nname = "frobnitis"\nsynonyms = ["frobnitis", "frob syndrome"]\n'
                     'icd10 = ["Z99.89"]\n', "utf-8")
    registry = build_registry(extra)
    result = compile_criterion("History of frob syndrome", registry=registry)
    assert result.tree.kind == "has" and result.tree.code == "frobnitis"
    assert result.tree.codes == {"icd10cm": ("Z99.89",)}


def test_phrases_read_through_punctuation_and_runs_of_spaces(vocab):
    text = "Dipeptidyl peptidase-4 (DPP-4) inhibitor, or  heart   failure"
    found = [(text[m.start:m.end], m.key) for m in vocab.find(text)]
    assert found[0] == ("Dipeptidyl peptidase-4 (DPP-4) inhibitor", "dpp4_inhibitor")
    assert ("heart   failure", "heart_failure") in found


@pytest.mark.parametrize("text", ["History of ALL", "Known AS", "Known MI"])
def test_short_abbreviations_count_in_capitals_only(vocab, text):
    # "all patients", "as calculated", "mi" in running text are words, not abbreviations
    assert len(vocab.find(text)) == 1
    assert vocab.find(text.lower()) == []
