"""Console sessions and the same-origin rule (gateway/domain/sessions.py)."""

from __future__ import annotations

from gateway.domain.sessions import SessionBook, same_origin


def test_a_session_is_found_by_its_id_until_idle_or_too_old() -> None:
    book = SessionBook(idle_s=10, max_age_s=25)
    sid, session = book.open("k1", now=0)
    assert book.find(sid, 5) is session
    assert book.find(sid, 14) is session  # the idle clock restarted at 5
    assert book.find(sid, 23) is session
    assert book.find(sid, 26) is None  # over max age, whatever the activity
    assert book.find(sid, 27) is None
    sid2, _ = book.open("k1", now=100)
    assert book.find(sid2, 111) is None  # idle


def test_unknown_logged_out_and_revoked_sessions_are_gone() -> None:
    book = SessionBook()
    a, _ = book.open("k1", 0)
    b, _ = book.open("k2", 0)
    c, _ = book.open("k1", 0)
    assert book.find("nope", 1) is None and book.find(None, 1) is None
    assert book.find("x" * 500, 1) is None
    assert book.close(a) and not book.close(a)
    assert book.find(a, 1) is None
    assert book.close_key("k1") == 1
    assert book.find(c, 1) is None and book.find(b, 1) is not None


def test_the_oldest_session_goes_when_the_book_is_full() -> None:
    book = SessionBook(max_sessions=2)
    first, _ = book.open("k", 0)
    book.open("k", 0)
    book.open("k", 0)
    assert len(book) == 2 and book.find(first, 1) is None


def test_csrf_token_is_per_session_and_compared_exactly() -> None:
    book = SessionBook()
    _, s1 = book.open("k", 0)
    _, s2 = book.open("k", 0)
    assert s1.csrf_token != s2.csrf_token
    assert s1.csrf_matches(s1.csrf_token)
    assert not s1.csrf_matches(s2.csrf_token)
    assert not s1.csrf_matches("") and not s1.csrf_matches(None)


def test_same_origin() -> None:
    host = "127.0.0.1:8080"
    assert same_origin(None, None, host)  # curl, a script
    assert same_origin("http://127.0.0.1:8080", "same-origin", host)
    assert same_origin("https://127.0.0.1:8080/", None, host)  # behind a TLS proxy
    assert same_origin(None, "none", host)
    assert not same_origin("http://evil.example", None, host)
    assert not same_origin("http://127.0.0.1:9999", "same-site", host)
    assert not same_origin(None, "cross-site", host)
    assert not same_origin("null", None, host)
