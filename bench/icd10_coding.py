"""How many diagnoses the ICD-10-CM matcher codes, and how many it codes wrong.

Run: PYTHONPATH=. .venv/bin/python bench/icd10_coding.py (docs/icd10-coding.md has the results).
Each item names the three-character category a coder would give it, or None where no code
should be given (not a diagnosis, or too vague). A code in another category is wrong.
"""

import json
from pathlib import Path

from reasoning.coding import code_diagnosis

ROOT = Path(__file__).resolve().parent.parent

# Conditions in tests/data (Synthea, FHIR and CDS Hooks examples) and the diagnoses the
# tests expect, with the category a coder would choose.
BUNDLED: dict[str, str | None] = {
    "Acute allergic reaction": "T78",
    "Acute bacterial sinusitis (disorder)": "J01",
    "Acute bronchitis (disorder)": "J20",
    "Acute viral pharyngitis (disorder)": "J02",
    "Anemia (disorder)": "D64",
    "Asthma": "J45",
    "Atopic dermatitis": "L20",
    "Body mass index 30+ - obesity (finding)": "E66",
    "Burnt Ear": "T20",
    "Cardiac Arrest": "I46",
    "Chronic intractable migraine without aura": "G43",
    "Chronic sinusitis (disorder)": "J32",
    "Concussion with no loss of consciousness": "S06",
    "Escherichia coli urinary tract infection": "N39",
    "Family history of cancer of colon": None,
    "Fetus with unknown complication": None,
    "Fracture of ankle": "S82",
    "Fracture of clavicle": "S42",
    "Gout": "M10",
    "History of cardiac arrest (situation)": None,
    "Hypertension": "I10",
    "Impacted molars": "K01",
    "Injury of medial collateral ligament of knee": "S83",
    "Laceration of forearm": "S51",
    "Miscarriage in first trimester": "O03",
    "Normal pregnancy": None,
    "Osteoarthritis of hip": "M16",
    "Osteoarthritis of knee": "M17",
    "Osteoporosis (disorder)": "M81",
    "Otitis media": "H66",
    "Perennial allergic rhinitis with seasonal variation": "J30",
    "Prediabetes": "R73",
    "Pulmonary emphysema (disorder)": "J43",
    "Rheumatoid arthritis": "M06",
    "Seasonal allergic rhinitis": "J30",
    "Sinusitis (disorder)": "J32",
    "Sprain of ankle": "S93",
    "Sprain of wrist": "S63",
    "Streptococcal sore throat (disorder)": "J02",
    "Stroke": "I63",
    "Viral sinusitis (disorder)": "J01",
    "Vitamin D deficiency": "E55",
    "Whiplash injury to neck": "S13",
    "Acute coronary syndrome": "I24",
    "Acute MI": "I21",
    "Unstable angina": "I20",
    "Pulmonary embolism": "I26",
}

# The options of the bundled MedQA questions that are diagnoses (questions 2, 6 and 8);
# every other option (drugs, actions, mechanisms, findings) should not code.
MEDQA_DIAGNOSES: dict[str, str | None] = {
    "Renal papillary necrosis": "N17",
    "Cholesterol embolization": "I75",
    "Eosinophilic granulomatosis with polyangiitis": "M30",
    "Polyarteritis nodosa": "M30",
    "Renal artery stenosis": "I70",
    "Benign prostatic hyperplasia": "N40",
    "Common iliac artery aneurysm": "I72",
    "Urethral stricture": "N35",
    "A history of stroke or venous thromboembolism": None,
    "Active or recurrent pelvic inflammatory disease (PID)": "N73",
    "Past medical history of breast cancer": None,
    "Known liver neoplasm": "D49",
}

# How a small model writes diagnoses: abbreviations, British spellings, misspellings,
# hedges, qualifiers. Written after the matcher was frozen, not tuned on.
PHRASINGS: dict[str, str | None] = {
    "Acute PE": "I26",
    "Massive PE with RV strain": "I26",
    "Provoked DVT left leg": "I82",
    "Left lower extremity DVT": "I82",
    "NSTEMI (type 1)": "I21",
    "Inferior STEMI": "I21",
    "ACS": "I24",
    "Community acquired pneumonia (CAP)": "J18",
    "Right lower lobe pneumonia": "J18",
    "Pneumonia, likely bacterial": "J15",
    "Septic shock secondary to urosepsis": "R65",
    "Sepsis of unknown source": "A41",
    "Diabetic ketoacidosis (DKA)": "E11",
    "Hypoglycaemia secondary to insulin": "E16",
    "Exacerbation of COPD": "J44",
    "Acute asthma exacerbation": "J45",
    "Congestive cardiac failure": "I50",
    "Acute decompensated heart failure": "I50",
    "New onset AF with RVR": "I48",
    "Atrial fibrilation": "I48",
    "Spontaneous pneumothorax": "J93",
    "Type A aortic dissection": "I71",
    "Upper GI bleed": "K92",
    "Acute gallstone pancreatitis": "K85",
    "Acute calculous cholecystitis": "K80",
    "Bacterial meningitis": "G00",
    "Anaphylactic reaction to penicillin": "T88",
    "Subarachnoid haemorrhage": "I60",
    "Ischaemic stroke": "I63",
    "TIA": "G45",
    "Pulmonary oedema": "J81",
    "Acute appendicitis with perforation": "K35",
    "Appendicits": "K35",
    "Pnuemonia": "J18",
    "Pyelonephritis": "N10",
    "Cellulitis of the left leg": "L03",
    "Iron-deficiency anaemia": "D50",
    "Ruptured ectopic pregnancy": "O00",
    "Ovarian torsion": "N83",
    "Small bowel obstruction": "K56",
    "Hyperkalaemia": "E87",
    "Acute kidney injury": "N17",
    "Costochondritis / musculoskeletal chest pain": "M94",
    "Panic attack": "F41",
    "Gastro-oesophageal reflux": "K21",
    # Not diagnoses: the matcher should give nothing.
    "Chest pain of unclear etiology": None,
    "Needs further workup": None,
    "mildred-9-19-20-11-20": None,
    "Pharmacology": None,
    "High": None,
}


def _medqa_other_options() -> list[str]:
    lines = (ROOT / "reasoning/datasets/medqa-us-4opt-12.jsonl").read_text().splitlines()
    options = [o for line in lines for o in json.loads(line)["options"].values()]
    return [o for o in options if o not in MEDQA_DIAGNOSES]


def _report(title: str, items: dict[str, str | None]) -> None:
    coded = right = wrong = missed = refused = false_codes = 0
    rows = []
    for text, expected in items.items():
        coding = code_diagnosis(text)
        got = f"{coding.code} {coding.description}" if coding else "-"
        if expected is None:
            refused += coding is None
            false_codes += coding is not None
            verdict = "refused" if coding is None else "FALSE CODE"
        elif coding is None:
            missed += 1
            verdict = "miss"
        else:
            coded += 1
            ok = coding.category == expected
            right += ok
            wrong += not ok
            verdict = "right" if ok else f"WRONG (want {expected})"
        rows.append(f"| {text} | {got} | {verdict} |")
    diagnoses = sum(1 for e in items.values() if e is not None)
    print(f"\n### {title}\n")
    print(
        f"{diagnoses} diagnoses: {coded} coded ({right} right category, {wrong} wrong), "
        f"{missed} not coded; {len(items) - diagnoses} non-diagnoses: {refused} refused, "
        f"{false_codes} coded.\n"
    )
    print("| text | code | verdict |\n|---|---|---|")
    print("\n".join(rows))


def main() -> None:
    _report("Bundled conditions (tests/data) and test diagnoses", BUNDLED)
    _report("MedQA options that are diagnoses", MEDQA_DIAGNOSES)
    _report("MedQA options that are not diagnoses", dict.fromkeys(_medqa_other_options()))
    _report("Model phrasings", PHRASINGS)


if __name__ == "__main__":
    main()
