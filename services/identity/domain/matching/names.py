"""Person names in one comparable form, whatever script or order they came in.

Korean customers appear as 김민준 in the app, "Kim Minjun" on a card, "Minjun
Kim" in an English CRM and "Gim Min-jun" on a passport. A matcher that compares
those strings as typed sees four people. So every name becomes a pair
``(given, family)`` of lower-case Latin keys:

* Hangul is romanised syllable by syllable (Revised Romanisation). Romanising
  the whole word applies sound-change rules across syllables (석열 → "seogyeol"),
  but people write their names per syllable ("Seokyeol", "Suk-yeol"), so the
  per-syllable form is the one that matches what they type elsewhere.
* Family names map to one canonical key per surname, so Kim/Gim, Lee/Yi/Rhee/I,
  Park/Pak/Bak … agree exactly. The spellings differ by convention, not by
  person, and an exact family-name agreement is worth far more than a fuzzy one.
* Spaces and hyphens inside given names are dropped ("Min-jun", "Min Jun").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from korean_romanizer.romanizer import Romanizer
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

# Hangul family names, most common first: the order breaks ties when a
# romanised full name could be split at more than one known surname.
_HANGUL_FAMILY: dict[str, str] = {
    "김": "kim",
    "이": "lee",
    "박": "park",
    "최": "choi",
    "정": "jung",
    "강": "kang",
    "조": "cho",
    "윤": "yoon",
    "장": "jang",
    "임": "lim",
    "한": "han",
    "오": "oh",
    "서": "seo",
    "신": "shin",
    "권": "kwon",
    "황": "hwang",
    "안": "ahn",
    "송": "song",
    "전": "jeon",
    "홍": "hong",
    "유": "yoo",
    "류": "yoo",
    "고": "ko",
    "문": "moon",
    "양": "yang",
    "손": "son",
    "배": "bae",
    "백": "baek",
    "허": "heo",
    "남": "nam",
    "심": "shim",
    "노": "noh",
    "하": "ha",
    "곽": "kwak",
    "성": "sung",
    "차": "cha",
    "주": "joo",
    "우": "woo",
    "구": "koo",
    "민": "min",
    "진": "jin",
    "지": "ji",
    "엄": "eom",
    "채": "chae",
    "원": "won",
    "천": "cheon",
    "방": "bang",
    "공": "kong",
    "현": "hyun",
    "함": "ham",
    "변": "byun",
    "염": "yeom",
    "여": "yeo",
    "추": "choo",
    "도": "do",
    "석": "seok",
    "선": "sun",
    "설": "seol",
    "마": "ma",
    "길": "gil",
    "연": "yeon",
    "위": "wi",
    "표": "pyo",
    "명": "myung",
    "기": "ki",
    "반": "ban",
    "왕": "wang",
    "금": "keum",
    "옥": "ok",
    "육": "yook",
    "인": "in",
    "맹": "maeng",
    "제": "je",
    "모": "mo",
    "탁": "tak",
    "국": "kook",
    "어": "eo",
    "은": "eun",
    "리": "lee",
    "림": "lim",
    "로": "noh",
    "나": "na",
}
# Two-syllable family names; 남궁민 is 남궁 + 민, not 남 + 궁민.
_HANGUL_FAMILY_2: dict[str, str] = {
    "남궁": "namgung",
    "선우": "sunwoo",
    "제갈": "jegal",
    "황보": "hwangbo",
    "독고": "dokgo",
    "사공": "sagong",
    "서문": "seomun",
    "동방": "dongbang",
}
# Romanised spellings of one surname -> its canonical key.
_FAMILY_VARIANTS: dict[str, tuple[str, ...]] = {
    "kim": ("gim",),
    "lee": ("yi", "rhee", "i", "ri", "rhie", "li"),
    "park": ("pak", "bak", "bahk", "pakk"),
    "choi": ("choe", "choy", "chey"),
    "jung": ("jeong", "chung", "joung", "cheong"),
    "kang": ("gang",),
    "cho": ("jo", "joe", "choh"),
    "yoon": ("yun", "youn"),
    "jang": ("chang",),
    "lim": ("im", "rim", "yim"),
    "shin": ("sin", "shinn"),
    "oh": ("o",),
    "seo": ("suh", "so"),
    "kwon": ("gwon",),
    "ahn": ("an",),
    "yoo": ("yu", "ryu", "you", "rhyu"),
    "jeon": ("jun", "chun", "jeun", "chon"),
    "ko": ("go", "koh"),
    "moon": ("mun",),
    "bae": ("pae",),
    "baek": ("paek", "paik", "baik"),
    "heo": ("hur", "huh", "her"),
    "noh": ("roh", "no", "ro"),
    "kwak": ("gwak",),
    "sung": ("seong",),
    "joo": ("ju", "chu"),
    "woo": ("u",),
    "shim": ("sim",),
    "koo": ("gu", "ku"),
    "hyun": ("hyeon",),
    "byun": ("byeon", "pyun"),
    "cheon": ("chun",),
    "sunwoo": ("seonu", "seonwoo"),
    "namgung": ("namkung",),
    "hwangbo": ("hwangpo",),
    "dokgo": ("dokko",),
}
_VARIANT_TO_KEY: dict[str, str] = {
    v: key for key, variants in _FAMILY_VARIANTS.items() for v in variants
}
# "chun" is both Jeon (전) and Cheon (천); Jeon is the more common surname.
_VARIANT_TO_KEY["chun"] = "jeon"
_KNOWN_FAMILY_KEYS: dict[str, int] = {}
for _rank, _key in enumerate([*_HANGUL_FAMILY.values(), *_HANGUL_FAMILY_2.values()]):
    _KNOWN_FAMILY_KEYS.setdefault(_key, _rank)

_TWO_SYLLABLE_KEYS = frozenset(_HANGUL_FAMILY_2.values())

_NOT_ALNUM = re.compile(r"[^\w]+|_")
_HANGUL_SYLLABLE = re.compile(r"[\uac00-\ud7a3]")


def has_hangul(text: str) -> bool:
    return _HANGUL_SYLLABLE.search(text) is not None


def clean(text: str) -> str:
    """NFKC, case-folded, with every run of punctuation or whitespace removed."""
    return _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", text).casefold())


def tokens(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return [t for t in (clean(p) for p in re.split(r"[\s,]+", folded)) if t]


@lru_cache(maxsize=65536)
def romanise(hangul: str) -> str:
    """Per-syllable Revised Romanisation; non-Hangul characters pass through."""
    return "".join(
        Romanizer(ch).romanize() if _HANGUL_SYLLABLE.fullmatch(ch) else ch for ch in hangul
    )


def family_key(family: str) -> str:
    """The canonical key of a family name in any script or spelling."""
    text = clean(family)
    if not text:
        return ""
    if has_hangul(text):
        if text in _HANGUL_FAMILY_2:
            return _HANGUL_FAMILY_2[text]
        if text in _HANGUL_FAMILY:
            return _HANGUL_FAMILY[text]
        text = romanise(text)
    return _VARIANT_TO_KEY.get(text, text)


def given_key(given: str) -> str:
    """The phonetic key of a given name in any script (see ``fold``)."""
    text = clean(given)
    return fold(romanise(text) if has_hangul(text) else text)


def is_korean_family(text: str) -> bool:
    key = family_key(text)
    return key in _KNOWN_FAMILY_KEYS


# Korean family names whose Latin spelling is as common outside Korea (Son,
# Wang, Ma, Han, Song …): written in Latin letters they do not make a name
# Korean on their own.
_SHARED_LATIN_FAMILY = frozenset(
    "son ma mo no ban in ok wang do ha na je u o i an go ko gu ku ju chu her hur ro so li ri "
    "yi woo wu jin min ki gil ji yang song moon bang hong kong cha chang jang lim han nam sun "
    "mun seo young yu ryu you oh wi".split()
)


def is_korean_name(given: str, family: str) -> bool:
    """Hangul in either name, or a family name that is Korean (and not a
    spelling shared with other languages, unless the family name key says
    so through a distinctly Korean variant)."""
    if has_hangul(given) or has_hangul(family):
        return True
    text = clean(family)
    return bool(text) and text not in _SHARED_LATIN_FAMILY and is_korean_family(text)


def split_hangul_full_name(name: str) -> tuple[str, str]:
    """Split 김민준 into (given, family) = (민준, 김). Korean writes the family
    name first; a two-syllable family name is taken only when a given name is
    left over, so 선우 on its own stays a (given-less) family name."""
    text = clean(name)
    if len(text) >= 3 and text[:2] in _HANGUL_FAMILY_2:
        return text[2:], text[:2]
    if len(text) >= 2:
        return text[1:], text[:1]
    return "", text


def _family_rank(token: str) -> int | None:
    key = family_key(token)
    rank = _KNOWN_FAMILY_KEYS.get(key)
    if rank is not None and key in _TWO_SYLLABLE_KEYS:
        return -1
    return rank


def split_full_name(name: str) -> tuple[str, str]:
    """(given, family) of a full name typed in one field, in any order."""
    if has_hangul(name) and len(tokens(name)) == 1:
        return split_hangul_full_name(name)
    parts = tokens(name)
    if not parts:
        return "", ""
    if len(parts) == 1:
        return parts[0], ""
    # A known Korean surname at either end is the family name ("Kim Minjun",
    # "Minjun Kim"); when both ends qualify ("Min Jun Kim") the more common
    # surname wins, a two-syllable one first, as it is rarely a given name.
    # Otherwise assume Western order: family name last.
    first, last = parts[0], parts[-1]
    first_rank = _family_rank(first)
    last_rank = _family_rank(last)
    if first_rank is not None and (last_rank is None or first_rank < last_rank):
        return "".join(parts[1:]), first
    return "".join(parts[:-1]), last


def name_keys(given: str, family: str, full_name: str = "") -> tuple[str, str]:
    """``(given_key, family_key)`` from whichever name fields a source filled."""
    given, family = name_fields(given, family, full_name)
    return given_key(given), family_key(family)


def name_fields(given: str, family: str, full_name: str = "") -> tuple[str, str]:
    """``(given, family)`` as written, from whichever name fields a source filled."""
    if not given and not family and full_name:
        given, family = split_full_name(full_name)
    elif (
        has_hangul(family)
        and not given
        and len(clean(family)) > 1
        and clean(family) not in _HANGUL_FAMILY_2
    ):
        # Some Korean forms have one name box; the whole name lands in "family".
        given, family = split_hangul_full_name(family)
    return given, family


# -- given names across scripts ------------------------------------------------
#
# A given name is compared in two ways. Its *key* is a phonetic folding of the
# romanised name that erases the spelling conventions people switch between
# (Yoon/Yun, Joon/Jun, Hee/Hui, Kyung/Gyeong, Chihun/Jihun): an exact match
# on keys is what "same name" means between two Latin spellings, and the key
# is what term frequencies count. When one record has the name in Hangul and
# the other in Latin letters, the Latin one is also checked against every
# spelling the Hangul name is commonly romanised to, syllable by syllable
# (Revised Romanisation, McCune-Reischauer without marks, and the popular
# forms), which is stricter than the key: 서연 is "Seoyeon", "Seo-yeon",
# "Soyon", "Suh Yeon", but not "Seoyoon" (서윤).

_MARKS = re.compile(r"[\u0300-\u036f]")
_FOLDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"([^aeiouwy])\1+", r"\1"),  # Shinn, Jinn, Kkot
        (r"sh", "s"),
        (r"ch", "j"),  # Chihun / Jihun (McCune-Reischauer)
        (r"oung", "eong"),  # Young / Yeong, Joung / Jeong
        (r"(?<=[bcdfghjklmnpstyz])ung", "eong"),  # Sung / Seong, Kyung / Kyeong
        (r"hyun", "hyeon"),  # Hyun / Hyeon
        (r"oo", "u"),  # Yoon, Joon, Soo
        (r"ou", "u"),  # You
        (r"ee", "i"),  # Hee, Yeeun
        (r"ui", "i"),  # Hui (희), Eui
        (r"wu", "u"),  # Woo after oo -> u: Minwoo / Minu
        (r"k", "g"),  # Kyung / Gyeong, Kang / Gang
        (r"p", "b"),
        (r"t", "d"),
        (r"r", "l"),
    )
)
# ㅓ (eo) and ㅗ (o), ㅕ (yeo) and ㅛ (yo), ㅡ (eu) and ㅜ (u) stay apart:
# 영수 / 용수, 서연 / 소연, 승민 / 숭민 are different names, and a key that
# merged them would link two people. Spellings that do write ㅓ as "u"
# (Sung, Jung, Hyun) are folded only where that reading is the usual one.


_MR_VOWELS = str.maketrans({"ŏ": "eo", "ŭ": "eu", "Ŏ": "Eo", "Ŭ": "Eu"})


def strip_marks(text: str) -> str:
    """Latin letters without diacritics; McCune-Reischauer's ŏ and ŭ are
    written as Revised Romanisation writes those vowels (eo, eu)."""
    text = unicodedata.normalize("NFC", text).translate(_MR_VOWELS)
    return unicodedata.normalize("NFC", _MARKS.sub("", unicodedata.normalize("NFD", text)))


def fold(latin: str) -> str:
    """The phonetic key of a romanised Korean given name (see above); names
    of other origins go through the same folding, so both sides of a
    comparison are always treated alike."""
    text = strip_marks(latin)
    for pattern, repl in _FOLDS:
        text = pattern.sub(repl, text)
    return text


# Hangul syllable = initial * 588 + medial * 28 + final (Unicode 3.12).
_INITIAL_SPELLINGS: tuple[tuple[str, ...], ...] = (
    ("g", "k"),  # ㄱ
    ("kk", "gg", "k"),  # ㄲ
    ("n",),  # ㄴ
    ("d", "t"),  # ㄷ
    ("tt", "dd"),  # ㄸ
    ("r", "l"),  # ㄹ
    ("m",),  # ㅁ
    ("b", "p"),  # ㅂ
    ("pp", "bb"),  # ㅃ
    ("s", "sh"),  # ㅅ
    ("ss", "s"),  # ㅆ
    ("",),  # ㅇ
    ("j", "ch"),  # ㅈ
    ("jj", "tch"),  # ㅉ
    ("ch",),  # ㅊ
    ("k",),  # ㅋ
    ("t",),  # ㅌ
    ("p",),  # ㅍ
    ("h",),  # ㅎ
)
_MEDIAL_SPELLINGS: tuple[tuple[str, ...], ...] = (
    ("a", "ah"),  # ㅏ
    ("ae", "ai"),  # ㅐ
    ("ya",),  # ㅑ
    ("yae",),  # ㅒ
    ("eo", "o", "u", "uh"),  # ㅓ (Seo, So, Sung, Suh)
    ("e",),  # ㅔ
    ("yeo", "yo", "yu", "you"),  # ㅕ (Yeon, Hyun, Young)
    ("ye",),  # ㅖ
    ("o", "oh"),  # ㅗ
    ("wa",),  # ㅘ
    ("wae",),  # ㅙ
    ("oe", "oi", "wi"),  # ㅚ
    ("yo",),  # ㅛ
    ("u", "oo", "woo", "wu"),  # ㅜ (Joon; 우 as Woo)
    ("wo", "weo"),  # ㅝ
    ("we",),  # ㅞ
    ("wi",),  # ㅟ
    ("yu", "yoo", "you"),  # ㅠ
    ("eu", "u"),  # ㅡ
    ("ui", "eui", "ee", "i"),  # ㅢ
    ("i", "ee", "y"),  # ㅣ
)
_FINAL_SPELLINGS: tuple[tuple[str, ...], ...] = (
    ("",),
    ("k", "g", "kk"),  # ㄱ
    ("k",),  # ㄲ
    ("k",),  # ㄳ
    ("n", "nn"),  # ㄴ
    ("n",),  # ㄵ
    ("n",),  # ㄶ
    ("t", "d"),  # ㄷ
    ("l", "r", "ll"),  # ㄹ
    ("k",),  # ㄺ
    ("m",),  # ㄻ
    ("l",),  # ㄼ
    ("l",),  # ㄽ
    ("l",),  # ㄾ
    ("p",),  # ㄿ
    ("l",),  # ㅀ
    ("m",),  # ㅁ
    ("p", "b"),  # ㅂ
    ("p",),  # ㅄ
    ("t", "s"),  # ㅅ
    ("t",),  # ㅆ
    ("ng",),  # ㅇ
    ("t",),  # ㅈ
    ("t",),  # ㅊ
    ("k",),  # ㅋ
    ("t",),  # ㅌ
    ("p",),  # ㅍ
    ("t",),  # ㅎ
)


def _syllable_pattern(ch: str) -> str:
    code = ord(ch) - 0xAC00
    initial, medial, final = code // 588, (code // 28) % 21, code % 28
    alternatives = sorted(
        {
            i + m + f
            for i in _INITIAL_SPELLINGS[initial]
            for m in _MEDIAL_SPELLINGS[medial]
            for f in _FINAL_SPELLINGS[final]
        },
        key=lambda s: (-len(s), s),
    )
    return "(?:" + "|".join(re.escape(a) for a in alternatives) + ")"


@lru_cache(maxsize=65536)
def _romanisations(hangul: str) -> re.Pattern[str] | None:
    parts = []
    for ch in hangul:
        if not _HANGUL_SYLLABLE.fullmatch(ch):
            return None
        parts.append(_syllable_pattern(ch))
    return re.compile("".join(parts)) if parts else None


@lru_cache(maxsize=8192)
def _spellings(hangul: str) -> tuple[str, ...]:
    """Every usual spelling of a (short) Hangul name; at most 4,096."""
    out: list[str] = [""]
    for ch in hangul:
        if not _HANGUL_SYLLABLE.fullmatch(ch):
            return ()
        code = ord(ch) - 0xAC00
        initial, medial, final = code // 588, (code // 28) % 21, code % 28
        parts = {
            i + m + f
            for i in _INITIAL_SPELLINGS[initial]
            for m in _MEDIAL_SPELLINGS[medial]
            for f in _FINAL_SPELLINGS[final]
        }
        out = [a + b for a in out for b in sorted(parts)]
        if len(out) > 4096:
            return ()
    return tuple(out)


@lru_cache(maxsize=262144)
def romanisation_distance(hangul: str, latin: str) -> int:
    """Edits between ``latin`` and the nearest usual spelling of the Hangul
    name: 0 is a romanisation, 1 a typo in one, more a different name
    (capped at 2; 2 also when the Hangul is too long to spell out)."""
    if romanises_as(hangul, latin):
        return 0
    text = strip_marks(clean(latin))
    spellings = _spellings(clean(hangul))
    if not spellings or not text:
        return 2
    best = process.extractOne(text, spellings, scorer=Levenshtein.distance, score_cutoff=1)
    return 1 if best is not None else 2


@lru_cache(maxsize=262144)
def romanises_as(hangul: str, latin: str) -> bool:
    """Is ``latin`` (any case, spaces, hyphens, marks) a usual romanisation of
    the Hangul name ``hangul``?"""
    pattern = _romanisations(clean(hangul))
    text = strip_marks(clean(latin))
    return pattern is not None and bool(text) and pattern.fullmatch(text) is not None
