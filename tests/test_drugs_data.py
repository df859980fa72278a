"""Shape and facts of eligibility/data/drugs.toml, the drug vocabulary.

Read with tomllib only, so the checks hold whatever module loads the file.  The ATC
codes below are checked against the WHO ATC/DDD Index (WHO Collaborating Centre for
Drug Statistics Methodology); the class memberships are pharmacology facts (a DOAC is
not a vitamin K antagonist, aspirin is not filed as an NSAID, ...).
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "eligibility" / "data"
DRUGS = tomllib.loads((DATA / "drugs.toml").read_text("utf-8"))
CLASSES = DRUGS["drug_class"]
INGREDIENTS = DRUGS["ingredient"]
CLASS = {c["id"]: c for c in CLASSES}
INGREDIENT = {i["name"]: i for i in INGREDIENTS}

# WHO ATC levels: 1 anatomical main group (one of 14 letters), 2 therapeutic subgroup
# (two digits), 3 and 4 pharmacological / chemical subgroups (a letter each), 5 substance
# (two digits)
_MAIN = "[ABCDGHJLMNPRSV]"
ATC_LEVEL = {
    1: re.compile(rf"{_MAIN}"),
    3: re.compile(rf"{_MAIN}\d\d"),
    4: re.compile(rf"{_MAIN}\d\d[A-Z]"),
    5: re.compile(rf"{_MAIN}\d\d[A-Z][A-Z]"),
    7: re.compile(rf"{_MAIN}\d\d[A-Z][A-Z]\d\d"),
}


def is_atc(code: str) -> bool:
    pattern = ATC_LEVEL.get(len(code))
    return pattern is not None and pattern.fullmatch(code) is not None


def covers(cls: dict, code: str) -> bool:
    return any(code.startswith(group) for group in cls["atc"])


def in_class(class_id: str, ingredient: str) -> bool:
    """The evaluator's rule: an ATC group of the class, or a listed member."""
    cls, ing = CLASS[class_id], INGREDIENT[ingredient]
    return covers(cls, ing["atc"]) or ingredient in cls.get("members", [])


def phrases(entry: dict) -> set[str]:
    return {entry["name"], *entry.get("synonyms", [])}


# ---- shape -------------------------------------------------------------------

def test_every_entry_has_its_fields():
    for cls in CLASSES:
        assert set(cls) <= {"id", "name", "synonyms", "atc", "members"}, cls["id"]
        assert re.fullmatch(r"[a-z][a-z0-9_]*", cls["id"]), cls["id"]
        assert cls["name"] and cls["synonyms"] and cls["atc"], cls["id"]
    for ing in INGREDIENTS:
        assert set(ing) <= {"name", "atc", "atc_other", "rxnorm", "synonyms"}, ing["name"]


def test_ids_and_names_are_unique():
    assert len(CLASS) == len(CLASSES)
    assert len(INGREDIENT) == len(INGREDIENTS)


def test_class_atc_codes_have_the_who_shape_of_their_level():
    bad = [(c["id"], code) for c in CLASSES for code in c["atc"] if not is_atc(code)]
    assert not bad
    # the patterns reject what is not a WHO code
    assert not any(is_atc(code) for code in ("C1", "C10A1", "C10AA5", "E10AA05", "c10aa", "C10AAA"))


def test_ingredient_atc_codes_are_substance_codes():
    for ing in INGREDIENTS:
        codes = [ing["atc"], *ing.get("atc_other", [])]
        assert all(len(c) == 7 and is_atc(c) for c in codes), ing["name"]
        assert len(set(codes)) == len(codes), ing["name"]


def test_every_ingredient_belongs_to_a_class():
    orphans = [i["name"] for i in INGREDIENTS
               if not any(covers(c, i["atc"]) or i["name"] in c.get("members", []) for c in CLASSES)]
    assert not orphans


def test_members_name_ingredients_outside_the_class_groups():
    for cls in CLASSES:
        for member in cls.get("members", []):
            assert member in INGREDIENT, (cls["id"], member)
            # a member already inside an ATC group of the class would be listed for nothing
            assert not covers(cls, INGREDIENT[member]["atc"]), (cls["id"], member)


def test_rxnorm_values_are_rxcuis_and_name_one_ingredient():
    seen: dict[str, str] = {}
    for ing in INGREDIENTS:
        for rxcui in ing.get("rxnorm", []):
            assert re.fullmatch(r"[1-9]\d*", rxcui), (ing["name"], rxcui)
            assert seen.setdefault(rxcui, ing["name"]) == ing["name"], rxcui


def test_synonyms_are_lower_case_and_not_bare_short_words():
    for entry in (*CLASSES, *INGREDIENTS):
        for phrase in entry.get("synonyms", []):
            assert phrase == phrase.lower() == phrase.strip(), phrase
            assert "  " not in phrase, phrase
            # one- or two-letter words match ordinary English; "su" predates this file
            assert len(phrase) > 2 or phrase == "su", phrase
    assert all(i["name"] == i["name"].lower() for i in INGREDIENTS)


def test_a_phrase_names_one_entry():
    """Except a class named after the one ingredient it is built around (warfarin, digoxin)."""
    owners: dict[str, list[tuple[str, dict]]] = {}
    for cls in CLASSES:
        for phrase in {cls["name"].lower(), *cls["synonyms"]}:
            owners.setdefault(phrase, []).append(("class", cls))
    for ing in INGREDIENTS:
        for phrase in phrases(ing):
            owners.setdefault(phrase, []).append(("ingredient", ing))
    for phrase, entries in owners.items():
        if len(entries) == 1:
            continue
        kinds = sorted(kind for kind, _ in entries)
        assert kinds == ["class", "ingredient"], (phrase, kinds)
        cls = next(e for kind, e in entries if kind == "class")
        ing = next(e for kind, e in entries if kind == "ingredient")
        assert covers(cls, ing["atc"]), phrase


def test_narrower_classes_come_first():
    """The compiler names a mentioned ingredient by the first class covering it."""
    for ing in INGREDIENTS:
        depths = [max(len(g) for g in c["atc"] if ing["atc"].startswith(g)) for c in CLASSES if covers(c, ing["atc"])]
        # an ingredient reached only through `members` has no first class by ATC
        assert not depths or depths[0] == max(depths), ing["name"]


def test_phrases_do_not_clash_with_other_packaged_vocabularies():
    """Conditions, statuses and procedures of the other data files keep their words."""
    mine = {p.lower() for c in CLASSES for p in (c["name"], *c["synonyms"])}
    mine |= {p for i in INGREDIENTS for p in phrases(i)}
    checked = 0
    for path in sorted(DATA.glob("*.toml")):
        if path.name == "drugs.toml":
            continue
        data = tomllib.loads(path.read_text("utf-8"))
        for section in ("condition", "status", "procedure"):
            for entry in data.get(section, []):
                theirs = {p.lower() for p in (entry.get("name", ""), *entry.get("synonyms", []))}
                assert not theirs & mine, (path.name, entry["id"], theirs & mine)
                checked += 1
        # abbreviations declared ambiguous elsewhere are resolved by context, never by a synonym
        for entry in data.get("ambiguous", []):
            assert entry["text"].lower() not in mine, (path.name, entry["text"])
    assert checked > 0


def test_registry_drug_entries_agree_with_this_file():
    """registry.toml's diabetes classes and ingredients are repeated here unchanged in meaning."""
    registry = tomllib.loads((DATA / "registry.toml").read_text("utf-8"))
    if not registry.get("drug_class") and not registry.get("ingredient"):
        pytest.skip("registry.toml no longer carries drug entries")
    for old in registry.get("drug_class", []):
        new = CLASS[old["id"]]
        assert (new["name"], new["atc"], new.get("members", [])) == (old["name"], old["atc"], old.get("members", []))
        assert set(old["synonyms"]) <= set(new["synonyms"]), old["id"]
    for old in registry.get("ingredient", []):
        new = INGREDIENT[old["name"]]
        assert new["atc"] == old["atc"], old["name"]
        assert set(old.get("rxnorm", [])) <= set(new.get("rxnorm", [])), old["name"]
        assert set(old.get("synonyms", [])) <= set(new.get("synonyms", [])), old["name"]


# ---- facts -------------------------------------------------------------------

# WHO ATC substance codes (ATC/DDD Index), known independently of this file
ATC_FACTS = [
    ("atorvastatin", "C10AA05"),
    ("simvastatin", "C10AA01"),
    ("lisinopril", "C09AA03"),
    ("ramipril", "C09AA05"),
    ("losartan", "C09CA01"),
    ("metoprolol", "C07AB02"),
    ("amlodipine", "C08CA01"),
    ("furosemide", "C03CA01"),
    ("apixaban", "B01AF02"),
    ("rivaroxaban", "B01AF01"),
    ("warfarin", "B01AA03"),
    ("clopidogrel", "B01AC04"),
    ("metformin", "A10BA02"),
    ("sitagliptin", "A10BH01"),
    ("empagliflozin", "A10BK03"),
    ("omeprazole", "A02BC01"),
    ("sertraline", "N06AB06"),
    ("quetiapine", "N05AH04"),
    ("diazepam", "N05BA01"),
    ("levetiracetam", "N03AX14"),
    ("prednisone", "H02AB07"),
    ("levothyroxine", "H03AA01"),
    ("tacrolimus", "L04AD02"),
    ("adalimumab", "L04AB04"),
    ("morphine", "N02AA01"),
    ("ibuprofen", "M01AE01"),
    ("amoxicillin", "J01CA04"),
    ("pembrolizumab", "L01FF02"),
    ("hydroxychloroquine", "P01BA02"),
    ("alendronic acid", "M05BA04"),
]


@pytest.mark.parametrize(("name", "code"), ATC_FACTS)
def test_who_atc_code(name, code):
    assert INGREDIENT[name]["atc"] == code


# RxNorm ingredient RXCUIs (NLM RxNorm, TTY=IN)
RXNORM_FACTS = [
    ("metformin", "6809"),
    ("atorvastatin", "83367"),
    ("simvastatin", "36567"),
    ("lisinopril", "29046"),
    ("acetylsalicylic acid", "1191"),
    ("warfarin", "11289"),
]


@pytest.mark.parametrize(("name", "rxcui"), RXNORM_FACTS)
def test_rxnorm_ingredient(name, rxcui):
    assert rxcui in INGREDIENT[name]["rxnorm"]


@pytest.mark.parametrize(("class_id", "ingredient", "member"), [
    ("statin", "rosuvastatin", True),
    ("ace_inhibitor", "enalapril", True),
    ("ace_inhibitor", "losartan", False),
    ("arb", "valsartan", True),
    ("beta_blocker", "carvedilol", True),
    ("non_dihydropyridine_ccb", "diltiazem", True),
    ("non_dihydropyridine_ccb", "amlodipine", False),
    ("loop_diuretic", "bumetanide", True),
    ("mineralocorticoid_receptor_antagonist", "spironolactone", True),
    ("doac", "apixaban", True),
    ("doac", "dabigatran etexilate", True),
    ("doac", "warfarin", False),          # a vitamin K antagonist, not a direct anticoagulant
    ("doac", "enoxaparin", False),        # injected
    ("anticoagulant", "fondaparinux", True),
    ("lmwh", "enoxaparin", True),
    ("lmwh", "heparin", False),
    ("antiplatelet", "acetylsalicylic acid", True),
    ("nsaid", "acetylsalicylic acid", False),   # WHO files aspirin under N02BA / B01AC
    ("nsaid", "celecoxib", True),
    ("opioid", "codeine", True),          # WHO codes plain codeine as a cough suppressant
    ("opioid", "methadone", True),
    ("opioid", "naloxone", False),
    ("benzodiazepine", "clonazepam", True),   # filed under antiepileptics
    ("benzodiazepine", "zolpidem", False),
    ("antiepileptic", "gabapentin", True),    # moved to N02BF, still an antiepileptic
    ("ssri", "escitalopram", True),
    ("snri", "duloxetine", True),
    ("snri", "mirtazapine", False),
    ("tricyclic_antidepressant", "amitriptyline", True),
    ("mao_inhibitor", "selegiline", True),
    ("antipsychotic", "lithium", False),
    ("atypical_antipsychotic", "haloperidol", False),
    ("atypical_antipsychotic", "aripiprazole", True),
    ("systemic_corticosteroid", "dexamethasone", True),
    ("hormone_replacement_therapy", "estradiol", True),
    ("hormone_replacement_therapy", "ethinylestradiol", False),
    ("hormonal_contraceptive", "levonorgestrel", True),
    ("tnf_inhibitor", "infliximab", True),
    ("tnf_inhibitor", "tocilizumab", False),
    ("il6_inhibitor", "tocilizumab", True),
    ("calcineurin_inhibitor", "ciclosporin", True),
    ("jak_inhibitor", "tofacitinib", True),
    ("jak_inhibitor", "ruxolitinib", True),
    ("immune_checkpoint_inhibitor", "nivolumab", True),
    ("immune_checkpoint_inhibitor", "ipilimumab", True),
    ("immune_checkpoint_inhibitor", "rituximab", False),
    ("anti_cd20", "ocrelizumab", True),
    ("cytotoxic_chemotherapy", "carboplatin", True),
    ("cytotoxic_chemotherapy", "imatinib", False),
    ("antineoplastic", "imatinib", True),
    ("antiretroviral", "ritonavir", True),
    ("antiretroviral", "nirmatrelvir", False),   # COVID-19, though coded beside the HIV protease inhibitors
    ("antiretroviral", "entecavir", False),      # hepatitis B only
    ("antiretroviral", "dolutegravir", True),
    ("glp1_receptor_agonist", "tirzepatide", True),
    ("antiobesity_drug", "semaglutide", True),
    ("oral_hypoglycemic_agent", "insulin glargine", False),
    ("glucose_lowering_drug", "insulin glargine", True),
    ("thyroid_hormone", "levothyroxine", True),
    ("antithyroid_drug", "thiamazole", True),
    ("bisphosphonate", "zoledronic acid", True),
    ("pcsk9_inhibitor", "evolocumab", True),
    ("lipid_lowering_drug", "ezetimibe", True),
    ("systemic_antibiotic", "azithromycin", True),
    ("systemic_antifungal", "terbinafine", True),
    ("stimulant", "methylphenidate", True),
    ("antihistamine", "cetirizine", True),
    ("systemic_retinoid", "isotretinoin", True),
])
def test_class_membership(class_id, ingredient, member):
    assert in_class(class_id, ingredient) is member


@pytest.mark.parametrize(("phrase", "class_id"), [
    ("statins", "statin"),
    ("hmg-coa reductase inhibitors", "statin"),
    ("ace inhibitor", "ace_inhibitor"),
    ("angiotensin receptor blocker", "arb"),
    ("doacs", "doac"),
    ("noacs", "doac"),
    ("opioid analgesics", "opioid"),
    ("narcotics", "opioid"),
    ("ppis", "proton_pump_inhibitor"),
    ("nsaids", "nsaid"),
    ("ssris", "ssri"),
    ("maois", "mao_inhibitor"),
    ("tnf inhibitors", "tnf_inhibitor"),
    ("anticonvulsants", "antiepileptic"),
    ("oral antidiabetic drugs", "oral_hypoglycemic_agent"),
    ("glucose-lowering drugs", "glucose_lowering_drug"),
    ("systemic corticosteroids", "systemic_corticosteroid"),
    ("haart", "antiretroviral"),
])
def test_criteria_phrases_name_their_class(phrase, class_id):
    assert phrase in CLASS[class_id]["synonyms"]


def test_brand_and_us_names_reach_the_ingredient():
    assert "lipitor" in INGREDIENT["atorvastatin"]["synonyms"]
    assert "acetaminophen" in INGREDIENT["paracetamol"]["synonyms"]
    assert "cyclosporine" in INGREDIENT["ciclosporin"]["synonyms"]
    assert "glyburide" in INGREDIENT["glibenclamide"]["synonyms"]
