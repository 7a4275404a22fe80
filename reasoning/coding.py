"""ICD-10-CM coding of a model's diagnosis words, so answers compare and export by code.

Pure Python over the code set that `simple-icd-10-cm` ships (CDC/NCHS ICD-10-CM, April 2026
release). The matcher is deliberately conservative: a wrong code is worse than none, because
the answer gate refuses a diagnosis that does not code.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"


@dataclass(frozen=True)
class Coding:
    code: str
    description: str
    category: str
    matched: str
    system: str = SYSTEM


# Common clinical phrasings the code set words differently, and abbreviations. Keys are in
# normalised form (see `normalise`); every code is checked against the package by the tests.
SYNONYMS: dict[str, str] = {
    "heart attack": "I21.9",
    "myocardial infarction": "I21.9",
    "acute myocardial infarction": "I21.9",
    "mi": "I21.9",
    "ami": "I21.9",
    "stemi": "I21.3",
    "st elevation myocardial infarction": "I21.3",
    "nstemi": "I21.4",
    "non st elevation myocardial infarction": "I21.4",
    "acute coronary syndrome": "I24.9",
    "acs": "I24.9",
    "unstable angina": "I20.0",
    "angina": "I20.9",
    "pulmonary embolism": "I26.99",
    "pulmonary embolus": "I26.99",
    "pe": "I26.99",
    "massive pulmonary embolism": "I26.09",
    "saddle pulmonary embolism": "I26.92",
    "pneumonia": "J18.9",
    "community acquired pneumonia": "J18.9",
    "cap": "J18.9",
    "aspiration pneumonia": "J69.0",
    "sepsis": "A41.9",
    "septicemia": "A41.9",
    "urosepsis": "A41.9",
    "severe sepsis": "R65.20",
    "septic shock": "R65.21",
    "dvt": "I82.409",
    "deep vein thrombosis": "I82.409",
    "deep venous thrombosis": "I82.409",
    "stroke": "I63.9",
    "ischemic stroke": "I63.9",
    "acute ischemic stroke": "I63.9",
    "cva": "I63.9",
    "cerebrovascular accident": "I63.9",
    "hemorrhagic stroke": "I61.9",
    "intracerebral hemorrhage": "I61.9",
    "subarachnoid hemorrhage": "I60.9",
    "sah": "I60.9",
    "tia": "G45.9",
    "transient ischemic attack": "G45.9",
    "appendicitis": "K35.80",
    "acute appendicitis": "K35.80",
    "dka": "E11.10",
    "diabetic ketoacidosis": "E11.10",
    "type 2 diabetic ketoacidosis": "E11.10",
    "type 1 diabetic ketoacidosis": "E10.10",
    "hhs": "E11.00",
    "hyperosmolar hyperglycemic state": "E11.00",
    "copd exacerbation": "J44.1",
    "exacerbation of copd": "J44.1",
    "aecopd": "J44.1",
    "copd": "J44.9",
    "asthma exacerbation": "J45.901",
    "exacerbation of asthma": "J45.901",
    "asthma": "J45.909",
    "status asthmaticus": "J45.902",
    "uti": "N39.0",
    "urinary tract infection": "N39.0",
    "pyelonephritis": "N10",
    "acute pyelonephritis": "N10",
    "cystitis": "N30.90",
    "heart failure": "I50.9",
    "congestive heart failure": "I50.9",
    "chf": "I50.9",
    "acute heart failure": "I50.9",
    "decompensated heart failure": "I50.9",
    "atrial fibrillation": "I48.91",
    "af": "I48.91",
    "afib": "I48.91",
    "a fib": "I48.91",
    "atrial flutter": "I48.92",
    "svt": "I47.10",
    "supraventricular tachycardia": "I47.10",
    "ventricular tachycardia": "I47.20",
    "pneumothorax": "J93.9",
    "tension pneumothorax": "J93.0",
    "spontaneous pneumothorax": "J93.83",
    "aortic dissection": "I71.00",
    "dissecting aortic aneurysm": "I71.00",
    "gi bleed": "K92.2",
    "gastrointestinal bleed": "K92.2",
    "gastrointestinal bleeding": "K92.2",
    "gastrointestinal hemorrhage": "K92.2",
    "upper gi bleed": "K92.2",
    "lower gi bleed": "K92.2",
    "ugib": "K92.2",
    "lgib": "K92.2",
    "pancreatitis": "K85.90",
    "acute pancreatitis": "K85.90",
    "cholecystitis": "K81.9",
    "acute cholecystitis": "K81.0",
    "cholangitis": "K83.09",
    "meningitis": "G03.9",
    "bacterial meningitis": "G00.9",
    "viral meningitis": "A87.9",
    "encephalitis": "G04.90",
    "anaphylaxis": "T78.2XXA",
    "anaphylactic shock": "T78.2XXA",
    "anaphylactic reaction": "T78.2XXA",
    "hypoglycemia": "E16.2",
    "hyperkalemia": "E87.5",
    "hypokalemia": "E87.6",
    "hyponatremia": "E87.1",
    "hypernatremia": "E87.0",
    "aki": "N17.9",
    "acute kidney injury": "N17.9",
    "acute renal failure": "N17.9",
    "ckd": "N18.9",
    "chronic kidney disease": "N18.9",
    "hypertension": "I10",
    "htn": "I10",
    "hypertensive emergency": "I16.1",
    "hypertensive urgency": "I16.0",
    "cellulitis": "L03.90",
    "ards": "J80",
    "acute respiratory distress syndrome": "J80",
    "bowel obstruction": "K56.609",
    "small bowel obstruction": "K56.609",
    "sbo": "K56.609",
    "ectopic pregnancy": "O00.90",
    "ruptured ectopic pregnancy": "O00.90",
    "testicular torsion": "N44.00",
    "ovarian torsion": "N83.519",
    "cardiac tamponade": "I31.4",
    "pericarditis": "I30.9",
    "myocarditis": "I51.4",
    "endocarditis": "I38",
    "infective endocarditis": "I33.0",
    "bronchiolitis": "J21.9",
    "bronchitis": "J40",
    "acute bronchitis": "J20.9",
    "influenza": "J11.1",
    "flu": "J11.1",
    "covid 19": "U07.1",
    "covid": "U07.1",
    "gastroenteritis": "K52.9",
    "diverticulitis": "K57.92",
    "peptic ulcer": "K27.9",
    "peptic ulcer disease": "K27.9",
    "gerd": "K21.9",
    "gastroesophageal reflux disease": "K21.9",
    "migraine": "G43.909",
    "seizure": "R56.9",
    "status epilepticus": "G40.901",
    "epilepsy": "G40.909",
    "syncope": "R55",
    "delirium": "R41.0",
    "dementia": "F03.90",
    "depression": "F32.A",
    "major depressive disorder": "F32.9",
    "anxiety": "F41.9",
    "panic attack": "F41.0",
    "alcohol withdrawal": "F10.930",
    "opioid overdose": "T40.2X1A",
    "iron deficiency anemia": "D50.9",
    "anemia": "D64.9",
    "sickle cell crisis": "D57.00",
    "hypothyroidism": "E03.9",
    "hyperthyroidism": "E05.90",
    "thyroid storm": "E05.91",
    "adrenal crisis": "E27.2",
    "type 2 diabetes": "E11.9",
    "type 2 diabetes mellitus": "E11.9",
    "type 1 diabetes": "E10.9",
    "type 1 diabetes mellitus": "E10.9",
    "diabetes": "E11.9",
    "diabetes mellitus": "E11.9",
    "cirrhosis": "K74.60",
    "hepatitis": "K75.9",
    "kidney stone": "N20.0",
    "renal colic": "N23",
    "nephrolithiasis": "N20.0",
    "gout": "M10.9",
    "septic arthritis": "M00.9",
    "osteomyelitis": "M86.9",
    "tuberculosis": "A15.9",
    "pulmonary tuberculosis": "A15.0",
    "lung cancer": "C34.90",
    "breast cancer": "C50.919",
    "preeclampsia": "O14.90",
    "pre eclampsia": "O14.90",
    "eclampsia": "O15.9",
    "placental abruption": "O45.90",
    "costochondritis": "M94.0",
    "pleural effusion": "J90",
    "pulmonary edema": "J81.0",
    "acute pulmonary edema": "J81.0",
    "hypovolemic shock": "R57.1",
    "cardiogenic shock": "R57.0",
    "shock": "R57.9",
    "abdominal aortic aneurysm": "I71.40",
    "ruptured abdominal aortic aneurysm": "I71.30",
    "aaa": "I71.40",
    "mesenteric ischemia": "K55.069",
    "acute mesenteric ischemia": "K55.069",
    "ischemic bowel": "K55.9",
    "carbon monoxide poisoning": "T58.91XA",
    "heat stroke": "T67.01XA",
    "hypothermia": "T68.XXXA",
    "allergic reaction": "T78.40XA",
    "acute allergic reaction": "T78.40XA",
    "osteoporosis": "M81.0",
    "sinusitis": "J32.9",
    "viral sinusitis": "J01.90",
    "emphysema": "J43.9",
    "pulmonary emphysema": "J43.9",
    "miscarriage": "O03.9",
    "obesity": "E66.9",
    "pid": "N73.9",
    "pelvic inflammatory disease": "N73.9",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words a model puts before a diagnosis ("suspected", "r/o", "likely the"): dropped from
# the start of the text only, so "low back pain" keeps its "low".
_LEADING_HEDGES = _words(
    "suspected probable possible likely unlikely presumed presumptive query rule out r o "
    "ruled differential diagnosis dx ddx impression consider considering concern for the "
    "working provisional clinical most is are was"
)
# Likelihoods, booleans and placeholders: a text made only of them is not a diagnosis.
_NOT_DIAGNOSES = _LEADING_HEDGES | _words(
    "high moderate low medium very most least true false yes no none null na nil unknown"
)
_STOPWORDS = _words(
    "of with without the and or other in to due by a an at on as from not elsewhere "
    "classified specified unspecified nos site organism type part region use code also "
    "than more one"
)
# Single words that name no diagnosis on their own even where the code set has a code for
# them (R52 "Pain, unspecified"): the answer gate must refuse them as a diagnosis.
_GENERIC = _words(
    "pain disease disorder disorders syndrome condition illness problem problems "
    "infection injury lesion mass abnormality abnormal failure deficiency inflammation "
    "symptom symptoms finding findings acute chronic severe mild unspecified other add "
    "pharmacology medicine treatment therapy diagnosis patient case"
)

# British spellings the code set writes the American way (oedema/edema, haemorrhage, ...),
# as one pattern: normalising the 60,000 descriptions at load time must stay fast.
_SPELLINGS = {
    "aem": "em",  # haem-, anaemia, ischaemia, glycaemia, kalaemia, leukaemia
    "oede": "ede",
    "oesoph": "esoph",
    "oestr": "estr",
    "rrhoea": "rrhea",  # diarrhoea, gonorrhoea, amenorrhoea
    "coeliac": "celiac",
    "caec": "cec",
    "paed": "ped",
    "foet": "fet",
    "anaesth": "anesth",
    "tumour": "tumor",
    "sulph": "sulf",
    "fibre": "fiber",
    "centre": "center",
}
_ANYWHERE = ("aem", "rrhoea")  # the rest start a word: "gastroesophageal" has "oesoph" in it
_SPELLING = re.compile(
    "|".join([*_ANYWHERE, r"\b(?:" + "|".join(s for s in _SPELLINGS if s not in _ANYWHERE) + ")"])
)
_NON_WORD = re.compile(r"[^a-z0-9]+")
_NEGATIONS = _words("no not without")
# Words that make a different diagnosis when a description has them and the text does not
# ("Congenital renal artery stenosis" is not "renal artery stenosis").
_QUALIFIERS = _words(
    "congenital neonatal newborn perinatal maternal fetal history family personal sequelae "
    "postprocedural postoperative induced drug traumatic acute chronic recurrent"
)
# A past or family condition is not the patient's diagnosis now.
_HISTORY = re.compile(r"\b(?:history|h o|hx|pmh)\b")
_MODIFIERS = _words("acute new onset recent")
_IDENTIFIER = re.compile(r"^[a-z]+(?: \d+){2,}$")  # "mildred-9-19-20-11-20"
_PARENTHESISED = re.compile(r"\(([^)]*)\)")


def normalise(text: str) -> str:
    """Case-fold, drop accents and punctuation, American spelling, single spaces."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _NON_WORD.sub(" ", text.casefold().replace("'", "").replace("\u2019", "")).strip()
    if "ae" in text or "oe" in text or "our" in text or "ph" in text or "re" in text:
        text = _SPELLING.sub(lambda m: _SPELLINGS[m.group()], text)
    return text


def _content(words: list[str]) -> frozenset[str]:
    """The words that carry meaning; a negation is glued to the word it negates."""
    content: list[str] = []
    negate = False
    for word in words:
        if word in _NEGATIONS:
            negate = True
        elif word not in _STOPWORDS:
            content.append(f"no_{word}" if negate else word)
            negate = False
    return frozenset(content)


@dataclass(frozen=True)
class _Entry:
    code: str
    words: frozenset[str]


@dataclass(frozen=True)
class _CodeSet:
    descriptions: dict[str, str]  # code -> description, every valid code
    exact: dict[str, str]  # normalised description or inclusion term -> code
    entries: tuple[_Entry, ...]  # content words of each description, for overlap
    by_word: dict[str, tuple[int, ...]]  # word -> entry indexes
    vocabulary: tuple[str, ...]  # long words, for spelling correction


@functools.cache
def _code_set() -> _CodeSet:
    # Imported here: the package parses its 10 MB XML on import (about 3 s).
    import simple_icd_10_cm as cm

    descriptions: dict[str, str] = {}
    exact: dict[str, str] = {}
    entries: list[_Entry] = []
    for code in cm.get_all_codes(True):
        # Chapters are numbers and blocks ranges ("A00-A09"); seven-character codes only
        # add an encounter to their parent's words, so the parent is matched instead.
        if code.isdigit() or "-" in code:
            continue
        if len(code) == 8 and cm.is_extended_subcategory(code):
            continue
        description = cm.get_description(code)
        descriptions[code] = description
        for phrase in (description, *cm.get_inclusion_term(code)):
            key = normalise(phrase)
            # The first (least specific) code wins a shared wording: the code set lists
            # categories before their subcategories.
            exact.setdefault(key, code)
            if phrase is description:
                words = _content(key.split())
                if words:
                    entries.append(_Entry(code, words))
    by_word: dict[str, list[int]] = defaultdict(list)
    for index, entry in enumerate(entries):
        for word in entry.words:
            by_word[word].append(index)
    vocabulary = tuple(sorted(w for w in by_word if len(w) >= 6 and w.isalpha()))
    return _CodeSet(
        descriptions=descriptions,
        exact=exact,
        entries=tuple(entries),
        by_word={w: tuple(ix) for w, ix in by_word.items()},
        vocabulary=vocabulary,
    )


def describe(code: str) -> str | None:
    """The code set's description of a code (extended seven-character codes included)."""
    import simple_icd_10_cm as cm

    _code_set()
    if not cm.is_valid_item(code) or cm.is_chapter_or_block(code):
        return None
    return str(cm.get_description(code))


def _unspecified(code: str) -> int:
    import simple_icd_10_cm as cm

    return str(cm.get_description(code)).casefold().count("unspecified")


_SIDES = _words("male female right left")  # never guessed: the text did not say


def _only(codes: Iterable[str]) -> str | None:
    """The one code, or None when there are none or several (male or female: do not guess)."""
    found = list(codes)
    return found[0] if len(found) == 1 else None


def _billable(code: str) -> str:
    """Descend from a non-billable code to its unspecified (or initial-encounter) child."""
    import simple_icd_10_cm as cm

    while not cm.is_leaf(code):
        children = cm.get_children(code)
        # ICD-10-CM's own conventions, in order: the billable child that repeats its
        # parent's words (J01.9 -> J01.90); one that leaves more unspecified ("... of
        # unspecified clavicle"); one that is the unspecified kind ("Unspecified sprain of
        # wrist"); the initial encounter as seventh character; a final 9 that is not "other
        # specified". Otherwise stop at a valid, non-billable code rather than guess.
        words = str(cm.get_description(code)).casefold()
        parent = _unspecified(code)
        described = {c: str(cm.get_description(c)).casefold() for c in children}
        chosen = (
            next((c for c in children if described[c] == words), None)
            or _only(c for c in children if _unspecified(c) > parent)
            or _only(
                c
                for c in children
                if (
                    described[c].startswith("unspecified") or described[c].endswith(", unspecified")
                )
                and not _SIDES & set(described[c].split())
            )
            or next((c for c in children if c.endswith("A") and len(c) == 8), None)
            or next(
                (
                    c
                    for c in children
                    if c.endswith("9") and not described[c].startswith("other specified")
                ),
                None,
            )
        )
        if chosen is None:
            return code  # valid, not billable: better than a guessed child
        code = chosen
    return code


def _coding(code: str, matched: str) -> Coding:
    code = _billable(code)
    description = describe(code)
    if description is None:
        raise ValueError(f"not an ICD-10-CM code: {code}")
    return Coding(code=code, description=description, category=code[:3], matched=matched)


def _candidates(text: str) -> list[str]:
    """The text, then without its parenthesised part, then the parenthesised part."""
    inner = [m.group(1) for m in _PARENTHESISED.finditer(text)]
    outer = _PARENTHESISED.sub(" ", text)
    seen: list[str] = []
    for candidate in (text, outer, *inner):
        key = normalise(candidate)
        words = key.split()
        while words and words[0] in _LEADING_HEDGES:
            words.pop(0)
        key = " ".join(words)
        if key and key not in seen:
            seen.append(key)
    # "Acute MI", "new onset atrial fibrillation": the same code once the modifier is gone.
    for key in list(seen):
        bare = " ".join(w for w in key.split() if w not in _MODIFIERS)
        if bare and bare not in seen:
            seen.append(bare)
    return seen


def _is_junk(key: str) -> bool:
    words = key.split()
    if not any(w.isalpha() and len(w) > 1 for w in words):
        return True  # punctuation, numbers, single letters
    if _IDENTIFIER.match(key) or all(w in _NOT_DIAGNOSES for w in words):
        return True
    if _HISTORY.search(key):
        return True
    content = [w for w in words if w not in _STOPWORDS]
    return len(content) == 1 and content[0] in _GENERIC


def _correct(words: list[str], code_set: _CodeSet) -> list[str]:
    """Fix a misspelt long word when the code set has one clearly close word for it."""
    fixed = []
    for word in words:
        if len(word) >= 7 and word not in code_set.by_word and word not in SYNONYM_WORDS:
            close = difflib.get_close_matches(word, code_set.vocabulary, n=2, cutoff=0.85)
            if len(close) == 1 or (
                len(close) == 2 and _ratio(word, close[0]) > _ratio(word, close[1])
            ):
                word = close[0]
        fixed.append(word)
    return fixed


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


SYNONYM_WORDS = frozenset(w for phrase in SYNONYMS for w in phrase.split())


def _overlap(key: str, code_set: _CodeSet) -> str | None:
    """A description whose content words the text covers, with a clear winner."""
    query = _content(key.split())
    if len(query) < 2:
        return None
    counts: dict[int, int] = defaultdict(int)
    for word in query:
        for index in code_set.by_word.get(word, ()):
            counts[index] += 1
    best: dict[frozenset[str], list[str]] = defaultdict(list)
    scores: dict[frozenset[str], float] = {}
    for index, shared in counts.items():
        entry = code_set.entries[index]
        covered = shared == len(entry.words)  # every content word of the description
        if covered and shared >= 2 and shared / len(query) >= 0.6:
            score = 1.0 + shared / len(query)
        elif (
            shared >= 2
            and shared / len(query | entry.words) >= 0.75
            and not (entry.words - query) & _QUALIFIERS
        ):
            score = shared / len(query | entry.words)
        else:
            continue
        best[entry.words].append(entry.code)
        scores[entry.words] = score
    if not scores:
        return None
    ranked = sorted(scores, key=lambda words: scores[words], reverse=True)
    if len(ranked) > 1 and scores[ranked[0]] - scores[ranked[1]] < 0.1:
        return None  # no clear winner between different wordings
    codes = best[ranked[0]]
    # Several codes share the wording: the least specific, "unspecified" first.
    return min(
        codes,
        key=lambda c: (
            "unspecified" not in code_set.descriptions[c].casefold(),
            len(c),
            c,
        ),
    )


def _synonym_within(key: str) -> tuple[str, str] | None:
    """The longest multi-word synonym phrase contained in the text, on word boundaries."""
    padded = f" {key} "
    found = [p for p in SYNONYMS if len(p.split()) >= 2 and f" {p} " in padded]
    if not found:
        return None
    phrase = max(found, key=len)
    return phrase, SYNONYMS[phrase]


def code_diagnosis(text: str) -> Coding | None:
    """The ICD-10-CM code for a diagnosis as a model wrote it, or None when nothing fits."""
    if not isinstance(text, str) or len(text) > 300:
        return None
    code_set = _code_set()
    candidates = _candidates(text)
    candidates = [key for key in candidates if not _is_junk(key)]
    for key in candidates:
        if key in SYNONYMS:
            return _coding(SYNONYMS[key], key)
        if key in code_set.exact and len(_content(key.split())) >= 1:
            return _coding(code_set.exact[key], key)
    for key in candidates:
        corrected = " ".join(_correct(key.split(), code_set))
        if corrected != key:
            if corrected in SYNONYMS:
                return _coding(SYNONYMS[corrected], corrected)
            if corrected in code_set.exact:
                return _coding(code_set.exact[corrected], corrected)
        code = _overlap(corrected, code_set)
        if code is not None:
            return _coding(code, corrected)
        within = _synonym_within(corrected)
        if within is not None:
            return _coding(within[1], within[0])
        inside = _phrase_within(corrected, code_set)
        if inside is not None:
            return _coding(inside[1], inside[0])
    return None


def _phrase_within(key: str, code_set: _CodeSet) -> tuple[str, str] | None:
    """The longest run of words in the text that is itself a diagnosis: a curated synonym
    (one word too, "pneumonia"), or two or more words that are a whole description ("chest
    pain" in "central chest pain for one hour"). A sentence around a diagnosis codes as it."""
    words = key.split()
    for size in range(len(words) - 1, 0, -1):
        for start in range(len(words) - size + 1):
            if _NEGATIONS & set(words[:start]):
                continue  # "no evidence of pneumonia" is not pneumonia
            phrase = " ".join(words[start : start + size])
            if _is_junk(phrase):
                continue
            if phrase in SYNONYMS:
                return phrase, SYNONYMS[phrase]
            for name in (phrase, f"{phrase} unspecified"):
                if size >= 2 and name in code_set.exact:
                    return phrase, code_set.exact[name]
    return None


_NEGATIONS = _words("no not without negative denies denied absent absence excluded free")


def is_clinical_term(text: str) -> bool:
    """Whether the text names something the code set codes (the answer gate's junk test)."""
    return code_diagnosis(text) is not None
