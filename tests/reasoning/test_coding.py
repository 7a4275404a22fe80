"""ICD-10-CM coding of diagnoses: synonyms, spellings, the code set's words, and junk refused."""

import pytest
import simple_icd_10_cm as cm

from reasoning.coding import SYNONYMS, SYSTEM, Coding, code_diagnosis, is_clinical_term, normalise


def _code(text: str) -> str | None:
    coding = code_diagnosis(text)
    return coding.code if coding else None


def test_every_synonym_code_is_a_billable_code_of_the_package() -> None:
    for phrase, code in SYNONYMS.items():
        assert cm.is_valid_item(code), (phrase, code)
        assert cm.is_leaf(code), (phrase, code)
        assert normalise(phrase) == phrase, phrase  # keys are looked up in normalised form


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Heart attack", "I21.9"),
        ("Myocardial infarction", "I21.9"),
        ("Acute MI", "I21.9"),
        ("STEMI", "I21.3"),
        ("NSTEMI", "I21.4"),
        ("Pulmonary embolism", "I26.99"),
        ("PE", "I26.99"),
        ("Pneumonia", "J18.9"),
        ("Sepsis", "A41.9"),
        ("DVT", "I82.409"),
        ("Deep vein thrombosis", "I82.409"),
        ("Stroke", "I63.9"),
        ("Appendicitis", "K35.80"),
        ("DKA", "E11.10"),
        ("Type 1 diabetic ketoacidosis", "E10.10"),
        ("COPD exacerbation", "J44.1"),
        ("Asthma exacerbation", "J45.901"),
        ("UTI", "N39.0"),
        ("Heart failure", "I50.9"),
        ("Atrial fibrillation", "I48.91"),
        ("Pneumothorax", "J93.9"),
        ("Aortic dissection", "I71.00"),
        ("GI bleed", "K92.2"),
        ("Pancreatitis", "K85.90"),
        ("Cholecystitis", "K81.9"),
        ("Meningitis", "G03.9"),
        ("Anaphylaxis", "T78.2XXA"),
        ("Unstable angina", "I20.0"),
        ("Acute coronary syndrome", "I24.9"),
    ],
)
def test_common_clinical_phrases_code_through_the_synonym_table(text: str, code: str) -> None:
    assert _code(text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Pulmonary oedema", "J81.0"),
        ("Subarachnoid haemorrhage", "I60.9"),
        ("Iron deficiency anaemia", "D50.9"),
        ("Hypoglycaemia", "E16.2"),
        ("Gastro-oesophageal reflux disease", "K21.9"),
        ("Oesophageal varices", "I85.0"),  # valid, not billable: bleeding is not said
    ],
)
def test_british_spellings_code_as_american_ones(text: str, code: str) -> None:
    assert _code(text) == code


def test_normalise_folds_case_accents_punctuation_and_spelling() -> None:
    assert normalise("  Ménière\u2019s  HAEMORRHAGE, (acute)! ") == "menieres hemorrhage acute"
    assert normalise("Oedema") == normalise("edema") == "edema"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Essential (primary) hypertension", "I10"),
        ("Cerebral infarction, unspecified", "I63.9"),
        ("Chest pain, unspecified", "R07.9"),
        ("Otitis media", "H66.90"),
        ("Prediabetes", "R73.03"),
        ("Streptococcal pharyngitis", "J02.0"),
    ],
)
def test_the_code_sets_own_words_code_exactly(text: str, code: str) -> None:
    assert _code(text) == code


def test_a_longer_phrase_codes_by_the_diagnosis_it_contains() -> None:
    assert _code("Acute pulmonary embolism with right heart strain") == "I26.99"
    assert _code("Acute bronchitis (disorder)") == "J20.9"


def test_hedges_and_misspellings_do_not_stop_a_code() -> None:
    assert _code("Suspected sepsis") == "A41.9"
    assert _code("likely pneumonia") == "J18.9"
    assert _code("pnuemonia") == "J18.9"
    assert _code("apendicitis") == "K35.80"


@pytest.mark.parametrize(
    "text",
    [
        "",
        ",",
        "},{",
        "1. ]{",
        "42",
        "0.48",
        "true",
        "False",
        "High",
        "moderate",
        "low",
        "mildred-9-19-20-11-20",
        "pain",
        "disease",
        "add",
        "Pharmacology",
        "Suspected",
        "a",
        "x" * 400,
    ],
)
def test_junk_does_not_code(text: str) -> None:
    assert code_diagnosis(text) is None
    assert not is_clinical_term(text)


def test_coding_keeps_the_code_its_words_category_and_what_matched() -> None:
    coding = code_diagnosis("Acute Pulmonary Embolism.")
    assert coding == Coding(
        code="I26.99",
        description="Other pulmonary embolism without acute cor pulmonale",
        category="I26",
        matched="pulmonary embolism",
    )
    assert coding.system == SYSTEM == "http://hl7.org/fhir/sid/icd-10-cm"
    assert is_clinical_term("Acute Pulmonary Embolism.")


def test_category_is_the_three_characters_before_the_dot() -> None:
    coding = code_diagnosis("Anaphylactic shock")
    assert coding is not None
    assert (coding.code, coding.category) == ("T78.2XXA", "T78")
    stemi, nstemi = code_diagnosis("STEMI"), code_diagnosis("NSTEMI")
    assert stemi is not None and nstemi is not None
    assert stemi.category == nstemi.category == "I21"  # self-consistency agrees on the category


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # Negations count: "not intractable" is a different code.
        ("Chronic intractable migraine without aura", "G43.719"),
        # A non-billable match descends only where the code set says which child is unspecified.
        ("Fracture of clavicle", "S42.009A"),
        ("Sprain of wrist", "S63.509A"),
        ("Acute bacterial sinusitis", "J01.90"),
        # ... and stops, valid, where the child would be a guess (male or female).
        ("Urethral stricture", "N35.9"),
    ],
)
def test_specificity_is_never_guessed(text: str, code: str) -> None:
    assert _code(text) == code


@pytest.mark.parametrize(
    "text",
    [
        "History of cardiac arrest",
        "Past medical history of breast cancer",
        "Family history of cancer of colon",
        "Renal artery stenosis",  # not "Congenital renal artery stenosis"
    ],
)
def test_history_and_added_qualifiers_do_not_code(text: str) -> None:
    assert code_diagnosis(text) is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("The most likely diagnosis is Pneumonia.", "J18.9"),
        ("Central chest pain for one hour", "R07.9"),
        ("Suspected sepsis from pneumonia", "A41.9"),
    ],
)
def test_a_diagnosis_inside_a_sentence_codes_as_itself(text: str, code: str) -> None:
    found = code_diagnosis(text)
    assert found is not None and found.code == code


@pytest.mark.parametrize("text", ["no evidence of pneumonia", "without chest pain today"])
def test_a_negated_diagnosis_inside_a_sentence_does_not_code(text: str) -> None:
    assert code_diagnosis(text) is None
