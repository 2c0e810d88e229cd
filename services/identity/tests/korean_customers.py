"""A synthetic Korean multi-channel customer base with the truth per record.

Households share a home address and often a landline and always a family
name; parents and children, siblings (often sharing a generation syllable,
민준 / 민서), twins (same birth date). Given names are drawn from the most
popular ones, so 김민준 and 이서연 born in the same year are many different
people. Every person has a mobile and an email, some a second email; their
records come from a store CRM (Hangul, ISO dates), a call centre (Hangul with
a space, compact dates, often only the home landline), POS (upper-case
romanised, two-digit years, +82 phones) and web sign-ups (romanised in
several systems and orders, dots or slashes in dates, a second email),
with typos. The spelling tables here are written independently of the
matcher's (`identity/domain/matching/names.py`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from cxloop_libs.pii import PhoneKind, normalize_phone, phone_kind

# Family names with population weights (%), and the Latin spellings people use.
FAMILY: list[tuple[str, float, list[str]]] = [
    ("김", 21.5, ["Kim", "Kim", "Kim", "Gim"]),
    ("이", 14.7, ["Lee", "Lee", "Lee", "Yi", "Rhee", "I"]),
    ("박", 8.4, ["Park", "Park", "Pak", "Bak"]),
    ("최", 4.7, ["Choi", "Choi", "Choe"]),
    ("정", 4.3, ["Jung", "Jeong", "Chung"]),
    ("강", 2.4, ["Kang", "Kang", "Gang"]),
    ("조", 2.1, ["Cho", "Jo", "Cho"]),
    ("윤", 2.1, ["Yoon", "Yun"]),
    ("장", 2.0, ["Jang", "Chang"]),
    ("임", 1.7, ["Lim", "Im", "Lim"]),
    ("한", 1.5, ["Han"]),
    ("오", 1.5, ["Oh"]),
    ("서", 1.5, ["Seo", "Suh"]),
    ("신", 1.5, ["Shin", "Sin"]),
    ("권", 1.4, ["Kwon", "Gwon"]),
    ("황", 1.4, ["Hwang"]),
    ("안", 1.4, ["Ahn", "An"]),
    ("송", 1.4, ["Song"]),
    ("류", 1.2, ["Ryu", "Yoo"]),
    ("홍", 1.1, ["Hong"]),
]

# Popular given names by generation (weights ~ popularity).
CHILD_NAMES = (
    "민준 서준 도윤 예준 시우 하준 주원 지호 지후 준우 현우 준서 도현 건우 우진 선우 "
    "서진 민재 현준 연우 유준 정우 승우 승현 시윤 준혁 은우 지환 승민 지우 "
    "서연 서윤 지유 서현 민서 하은 하윤 윤서 지민 채원 지윤 은서 수아 다은 예은 수빈 "
    "지아 소윤 예린 민지 지원 유진 수민 현서"
).split()
PARENT_NAMES = (
    "영희 영수 철수 미경 정희 순자 영숙 미숙 경희 정숙 은정 현주 성민 상훈 동현 "
    "정호 성호 영호 재훈 지훈 혜진 지영 미영 은영 성진 태호 경수 상철 용수 진영"
).split()

# Spellings of each syllable used above: Revised Romanisation first, then
# what people actually type (McCune-Reischauer without marks, popular forms).
SYLLABLE: dict[str, list[str]] = {
    "민": ["min"],
    "준": ["jun", "joon"],
    "서": ["seo", "suh", "so"],
    "도": ["do", "to"],
    "윤": ["yun", "yoon"],
    "예": ["ye"],
    "시": ["si", "shi"],
    "우": ["u", "woo"],
    "하": ["ha"],
    "주": ["ju", "joo"],
    "원": ["won", "weon"],
    "지": ["ji", "chi"],
    "호": ["ho"],
    "후": ["hu", "hoo"],
    "현": ["hyeon", "hyun"],
    "건": ["geon", "gun", "kun"],
    "진": ["jin"],
    "재": ["jae"],
    "연": ["yeon", "yon"],
    "유": ["yu", "yoo"],
    "정": ["jeong", "jung"],
    "승": ["seung", "sung"],
    "혁": ["hyeok", "hyuk"],
    "은": ["eun"],
    "환": ["hwan"],
    "채": ["chae"],
    "수": ["su", "soo"],
    "아": ["a"],
    "다": ["da"],
    "빈": ["bin"],
    "소": ["so"],
    "린": ["rin", "lin"],
    "영": ["yeong", "young"],
    "희": ["hui", "hee"],
    "철": ["cheol", "chul"],
    "미": ["mi"],
    "경": ["gyeong", "kyung", "kyeong"],
    "순": ["sun", "soon"],
    "자": ["ja", "cha"],
    "숙": ["suk", "sook"],
    "성": ["seong", "sung"],
    "상": ["sang"],
    "훈": ["hun", "hoon"],
    "동": ["dong"],
    "태": ["tae"],
    "용": ["yong"],
    "혜": ["hye"],
    "조": ["jo"],
    "선": ["seon", "sun"],
}

CITIES = [
    ("서울", "강남구", "06"),
    ("서울", "마포구", "03"),
    ("서울", "송파구", "05"),
    ("서울", "노원구", "01"),
    ("부산", "해운대구", "48"),
    ("인천", "남동구", "21"),
    ("대구", "수성구", "42"),
    ("경기", "성남시 분당구", "13"),
    ("경기", "수원시 영통구", "16"),
    ("경기", "고양시 일산동구", "10"),
    ("대전", "유성구", "34"),
    ("광주", "서구", "61"),
]
ROADS = "테헤란로 월드컵북로 올림픽로 동일로 해운대로 인하로 달구벌대로 판교로 광교로 중앙로 대학로 상무대로".split()
AREA = {
    "서울": "02",
    "부산": "051",
    "인천": "032",
    "대구": "053",
    "경기": "031",
    "대전": "042",
    "광주": "062",
}
MAIL_DOMAINS = ["naver.com", "naver.com", "gmail.com", "daum.net", "hanmail.net", "kakao.com"]
SOURCES = ["crm", "callcenter", "pos", "web"]


@dataclass
class Person:
    pid: int
    family: str  # Hangul
    given: str  # Hangul
    dob: date
    mobile: str  # 010########
    emails: list[str]
    home: dict[str, str]
    landline: str


@dataclass
class Record:
    record_id: str
    source: str
    person: int
    given_name: str = ""
    family_name: str = ""
    full_name: str = ""
    date_of_birth: str = ""
    street: str = ""
    city: str = ""
    postcode: str = ""
    phone: str = ""
    email: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _weighted(rng: random.Random, items: list[str], skew: float = 1.0) -> str:
    weights = [1 / (i + 1) ** skew for i in range(len(items))]
    return rng.choices(items, weights)[0]


def _romanise(rng: random.Random, hangul: str, *, consistent: int | None = None) -> list[str]:
    """Each syllable spelled one of its usual ways."""
    out = []
    for ch in hangul:
        options = SYLLABLE[ch]
        out.append(
            options[consistent % len(options)] if consistent is not None else rng.choice(options)
        )
    return out


def _latin_family(rng: random.Random, family: str) -> str:
    for h, _, spellings in FAMILY:
        if h == family:
            return rng.choice(spellings)
    raise KeyError(family)


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 2)
    kind = rng.random()
    if kind < 0.5:  # swap neighbours
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind < 0.8:  # drop a letter
        return text[:i] + text[i + 1 :]
    return text[:i] + rng.choice("aeiounm") + text[i + 1 :]


def _mobile(rng: random.Random, taken: set[str]) -> str:
    while True:
        # A few in 010-59xx, a range phonenumbers' metadata does not know yet.
        head = "5999" if rng.random() < 0.05 else f"{rng.randrange(2000, 9999):04d}"
        n = f"010{head}{rng.randrange(0, 10000):04d}"
        if n not in taken:
            taken.add(n)
            return n


def _given_for_sibling(rng: random.Random, first: str, pool: list[str]) -> str:
    # Half the siblings share a generation syllable (돌림자) with the first.
    if rng.random() < 0.5:
        for _ in range(20):
            cand = _weighted(rng, pool, 0.6)
            if cand != first and (cand[0] == first[0] or cand[1] == first[1]):
                return cand
    while True:
        cand = _weighted(rng, pool, 0.6)
        if cand != first:
            return cand


def people(rng: random.Random, households: int) -> list[Person]:
    out: list[Person] = []
    taken_mobiles: set[str] = set()
    taken_emails: set[str] = set()
    fam_names = [f[0] for f in FAMILY]
    fam_weights = [f[1] for f in FAMILY]
    for h in range(households):
        family = rng.choices(fam_names, fam_weights)[0]
        city, district, zip2 = rng.choice(CITIES)
        home = {
            "street": f"{district} {rng.choice(ROADS)} {rng.randrange(1, 300)}길 {rng.randrange(1, 80)}"
            + (
                f" {rng.randrange(101, 120)}동 {rng.randrange(1, 25)}0{rng.randrange(1, 5)}호"
                if rng.random() < 0.6
                else ""
            ),
            "city": city,
            "postcode": f"{zip2}{rng.randrange(0, 1000):03d}",
        }
        landline = f"{AREA[city]}{rng.randrange(200, 999)}{rng.randrange(0, 10000):04d}"
        if rng.random() < 0.15:
            landline = f"070{rng.randrange(1000, 9999)}{rng.randrange(0, 10000):04d}"
        size = rng.choices([1, 2, 3, 4, 5], [25, 25, 25, 18, 7])[0]
        members: list[tuple[str, date]] = []
        parent_year = rng.randrange(1955, 1980)
        if size == 1:
            members.append(
                (
                    _weighted(rng, CHILD_NAMES + PARENT_NAMES, 0.5),
                    _birth(rng, rng.randrange(1960, 2002)),
                )
            )
        else:
            parents = 1 if size == 2 and rng.random() < 0.4 else 2
            first_parent = _weighted(rng, PARENT_NAMES, 0.5)
            members.append((first_parent, _birth(rng, parent_year)))
            if parents == 2:
                members.append(
                    (
                        _given_for_sibling(rng, first_parent, PARENT_NAMES),
                        _birth(rng, parent_year + rng.randrange(-3, 4)),
                    )
                )
            kids = size - parents
            child_year = parent_year + rng.randrange(25, 35)
            first_child = _weighted(rng, CHILD_NAMES, 0.6)
            twins = kids >= 2 and rng.random() < 0.2
            kid_dob = _birth(rng, min(child_year, 2012))
            for k in range(kids):
                given = first_child if k == 0 else _given_for_sibling(rng, first_child, CHILD_NAMES)
                if given in [m[0] for m in members]:
                    given = _given_for_sibling(rng, given, CHILD_NAMES)
                dob = kid_dob if (twins and k < 2) else _birth(rng, min(child_year + 2 * k, 2012))
                members.append((given, dob))
        for given, dob in members:
            pid = len(out)
            roman = "".join(_romanise(rng, given, consistent=0))
            fam = _latin_family(rng, family).lower()
            emails = [_email(rng, roman, fam, dob, taken_emails)]
            if rng.random() < 0.35:
                emails.append(_email(rng, roman, fam, dob, taken_emails))
            out.append(
                Person(pid, family, given, dob, _mobile(rng, taken_mobiles), emails, home, landline)
            )
        _ = h
    return out


def _birth(rng: random.Random, year: int) -> date:
    return date(year, 1, 1) + timedelta(days=rng.randrange(0, 365))


def _email(rng: random.Random, roman: str, fam: str, dob: date, taken: set[str]) -> str:
    while True:
        style = rng.random()
        if style < 0.3:
            local = f"{roman}{dob.year % 100:02d}"
        elif style < 0.6:
            local = f"{fam}.{roman}{rng.randrange(1, 999)}"
        else:
            local = f"{roman[:3]}{fam}{rng.randrange(10, 9999)}"
        email = f"{local}@{rng.choice(MAIL_DOMAINS)}"
        if email not in taken:
            taken.add(email)
            return email


def _fmt_mobile(rng: random.Random, n: str) -> str:
    style = rng.random()
    if style < 0.4:
        return f"{n[:3]}-{n[3:7]}-{n[7:]}"
    if style < 0.6:
        return n
    if style < 0.8:
        return f"+82 {n[1:3]} {n[3:7]} {n[7:]}"
    return f"{n[:3]} {n[3:7]} {n[7:]}"


def _fmt_landline(n: str) -> str:
    if n.startswith("02"):
        return f"02-{n[2:-4]}-{n[-4:]}"
    return f"{n[:3]}-{n[3:-4]}-{n[-4:]}"


def _latin_name(rng: random.Random, p: Person) -> dict[str, str]:
    syllables = _romanise(rng, p.given)
    family = _latin_family(rng, p.family)
    style = rng.random()
    if rng.random() < 0.06:  # a typo in the romanised given name
        joined = _typo(rng, "".join(syllables))
        syllables = [joined]
    if style < 0.25:
        return {"given_name": "".join(syllables).capitalize(), "family_name": family}
    if style < 0.4:
        return {"given_name": "-".join(syllables).title(), "family_name": family.upper()}
    if style < 0.6:
        return {"full_name": f"{''.join(syllables).capitalize()} {family}"}
    if style < 0.75:
        return {"full_name": f"{family} {' '.join(s.capitalize() for s in syllables)}"}
    if style < 0.9:
        return {"full_name": f"{family.upper()} {'-'.join(syllables).upper()}"}
    return {"full_name": f"{' '.join(s.capitalize() for s in syllables)} {family}"}


def _hangul_name(rng: random.Random, p: Person) -> dict[str, str]:
    style = rng.random()
    if style < 0.45:
        return {"full_name": p.family + p.given}
    if style < 0.7:
        return {"full_name": f"{p.family} {p.given}"}
    return {"given_name": p.given, "family_name": p.family}


def _dob(rng: random.Random, d: date, source: str) -> str:
    if source == "crm":
        return d.isoformat()
    if source == "callcenter":
        return rng.choice([d.strftime("%Y%m%d"), d.strftime("%y%m%d")])
    if source == "pos":
        return rng.choice([d.strftime("%y/%m/%d"), d.strftime("%Y/%m/%d"), ""])
    return rng.choice([d.strftime("%Y.%m.%d"), d.strftime("%Y/%m/%d"), d.isoformat()])


def records_of(rng: random.Random, persons: list[Person]) -> list[Record]:
    out: list[Record] = []
    for p in persons:
        n = rng.choices([1, 2, 3, 4], [25, 35, 28, 12])[0]
        sources = rng.sample(SOURCES, n) if n <= len(SOURCES) else SOURCES
        for source in sources:
            r = Record(f"{source}-{len(out):06d}", source, p.pid)
            home = dict(p.home)
            if rng.random() < 0.05:
                home["street"] = _typo(rng, home["street"])
            if source == "crm":
                r.__dict__.update(_hangul_name(rng, p))
                r.date_of_birth = _dob(rng, p.dob, source)
                r.phone = _fmt_mobile(rng, p.mobile)
                r.email = p.emails[0] if rng.random() < 0.8 else ""
                r.street, r.city, r.postcode = home["street"], home["city"], home["postcode"]
            elif source == "callcenter":
                r.__dict__.update(_hangul_name(rng, p))
                r.date_of_birth = _dob(rng, p.dob, source)
                # Called from home: the household's landline only.
                r.phone = (
                    _fmt_landline(p.landline) if rng.random() < 0.45 else _fmt_mobile(rng, p.mobile)
                )
                r.street, r.city, r.postcode = home["street"], home["city"], home["postcode"]
                if rng.random() < 0.3:
                    r.email = rng.choice(p.emails)
            elif source == "pos":
                name = _latin_name(rng, p)
                r.__dict__.update(
                    {k: v.upper() for k, v in name.items()} if rng.random() < 0.5 else name
                )
                r.date_of_birth = _dob(rng, p.dob, source)
                r.phone = _fmt_mobile(rng, p.mobile) if rng.random() < 0.85 else ""
                r.postcode = home["postcode"] if rng.random() < 0.6 else ""
                r.email = p.emails[0] if rng.random() < 0.3 else ""
            else:  # web
                r.__dict__.update(
                    _latin_name(rng, p) if rng.random() < 0.7 else _hangul_name(rng, p)
                )
                r.date_of_birth = _dob(rng, p.dob, source)
                r.email = p.emails[-1]  # the second email where there is one
                r.phone = _fmt_mobile(rng, p.mobile) if rng.random() < 0.5 else ""
                if rng.random() < 0.6:
                    r.street, r.city, r.postcode = home["street"], home["city"], home["postcode"]
            out.append(r)
    rng.shuffle(out)
    return out


def generate(households: int = 2000, seed: int = 14) -> tuple[list[Person], list[Record]]:
    rng = random.Random(seed)
    persons = people(rng, households)
    return persons, records_of(rng, persons)


def true_pairs(records: list[Record]) -> set[tuple[str, str]]:
    by_person: dict[int, list[str]] = {}
    for r in records:
        by_person.setdefault(r.person, []).append(r.record_id)
    out: set[tuple[str, str]] = set()
    for ids in by_person.values():
        ids.sort()
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                out.add((a, b))
    return out


def pairs_of_clusters(owner: dict[str, str]) -> set[tuple[str, str]]:
    members: dict[str, list[str]] = {}
    for rec, cid in owner.items():
        members.setdefault(cid, []).append(rec)
    out: set[tuple[str, str]] = set()
    for ids in members.values():
        ids.sort()
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                out.add((a, b))
    return out


def pairwise(predicted: set[tuple[str, str]], truth: set[tuple[str, str]]) -> dict[str, float]:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 0.0
    recall = tp / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {
        "precision": round(precision, 5),
        "recall": round(recall, 5),
        "f1": round(f1, 5),
        "false_positives": len(predicted) - tp,
        "false_negatives": len(truth) - tp,
    }


def _e164(raw: str) -> str:
    try:
        return normalize_phone(raw) if raw else ""
    except ValueError:
        return ""


# -- the records as the service's API receives them --------------------------


def imported(r: Record) -> Any:
    from cxloop.identity.v1 import identity_service_pb2 as pb

    return pb.ImportedRecord(
        record_id=r.record_id,
        source=r.source,
        given_name=r.given_name,
        family_name=r.family_name,
        full_name=r.full_name,
        date_of_birth=r.date_of_birth,
        street=r.street,
        city=r.city,
        postcode=r.postcode,
        phone=r.phone,
        email=r.email,
    )


def resolve_request(r: Record) -> Any:
    from cxloop.common.v1 import identifier_pb2 as idpb
    from cxloop.identity.v1 import identity_service_pb2 as pb

    ids = [idpb.Identifier(type=idpb.IDENTIFIER_TYPE_EMAIL, value=r.email)]
    phone = _e164(r.phone)
    if phone and phone_kind(phone) is PhoneKind.MOBILE:
        ids.append(idpb.Identifier(type=idpb.IDENTIFIER_TYPE_PHONE, value=r.phone))
    traits = {
        k: v
        for k, v in (
            ("given_name", r.given_name),
            ("family_name", r.family_name),
            ("full_name", r.full_name),
            ("date_of_birth", r.date_of_birth),
            ("street", r.street),
            ("city", r.city),
            ("postcode", r.postcode),
            ("phone", r.phone),
            ("email", r.email),
        )
        if v
    }
    return pb.ResolveRequest(identifiers=ids, source=r.source, traits=traits)
