"""Merge protection in the pure domain: per-type limits, shared devices and
identifier priority decide which links a `GraphView` refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from identity.domain.model import GraphView, HashedId
from identity.domain.policy import DEFAULT_POLICY, PERMISSIVE, MergePolicy

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=1)


def user(h: str) -> HashedId:
    return HashedId("user_id", h)


def anon(h: str) -> HashedId:
    return HashedId("anonymous_id", h)


def email(h: str) -> HashedId:
    return HashedId("email", h)


def phone(h: str) -> HashedId:
    return HashedId("phone", h)


def card(h: str) -> HashedId:
    return HashedId("loyalty_card", h)


def seq_ids():  # type: ignore[no-untyped-def]
    n = count(1)
    return lambda: f"c{next(n)}"


def test_two_user_ids_in_one_event_do_not_share_a_customer() -> None:
    view = GraphView()
    out = view.link([user("u1"), user("u2")], T0, seq_ids())
    assert out is not None and out.created
    assert [i.hash for i in out.added] == ["u1"]
    (blocked,) = out.blocked
    assert blocked.reason == "limit:user_id"
    assert blocked.kept_by is None  # new and refused: not stored
    assert "u2" not in view.owner_of


def test_customers_with_different_user_ids_do_not_merge() -> None:
    view = GraphView()
    view.know("u1", "old", T0, id_type="user_id")
    view.know("e1", "old", T0, id_type="email")
    view.know("u2", "young", LATER, id_type="user_id")
    out = view.link([email("e1"), user("u2")], LATER, seq_ids())
    assert out is not None
    # The user id has priority: the event belongs to its customer, and the
    # email stays where it was.
    assert out.customer_id == "young"
    assert out.merged_customer_ids == []
    (blocked,) = out.blocked
    assert (blocked.kept_by, blocked.reason) == ("old", "limit:user_id")
    assert view.owner_of["e1"] == "old"


def test_email_limit_refuses_the_sixth_email() -> None:
    view = GraphView()
    view.know("u1", "c", T0, id_type="user_id")
    for n in range(5):
        view.know(f"e{n}", "c", T0, id_type="email")
    out = view.link([user("u1"), email("e-new"), phone("p1")], LATER, seq_ids())
    assert out is not None and out.customer_id == "c"
    assert [i.hash for i in out.added] == ["p1"]
    assert [(b.identifiers[0].hash, b.reason) for b in out.blocked] == [("e-new", "limit:email")]


def test_counts_include_identifiers_outside_the_view() -> None:
    # load_view loads full per-type counts, not only the identifiers in the batch.

    view = GraphView()
    view.know("p0", "c", T0)
    view.set_counts("c", {"phone": 5})
    out = view.link([phone("p0"), phone("p-new")], LATER, seq_ids())
    assert out is not None and out.added == []
    assert out.blocked[0].reason == "limit:phone"


def test_merge_within_limits_still_happens() -> None:
    view = GraphView()
    view.know("e1", "old", T0, id_type="email")
    view.know("u1", "young", LATER, id_type="user_id")
    out = view.link([email("e1"), user("u1")], LATER, seq_ids())
    assert out is not None
    assert out.customer_id == "old" and out.merged_customer_ids == ["young"]
    assert out.blocked == []
    assert view.counts("old") == {"email": 1, "user_id": 1}


def test_device_seen_with_a_second_user_id_is_shared_and_links_only_the_user() -> None:
    view = GraphView()
    new_id = seq_ids()
    first = view.link([anon("dev"), user("u1")], T0, new_id)
    assert first is not None and first.customer_id == "c1"
    out = view.link([anon("dev"), user("u2")], LATER, new_id)
    assert out is not None and out.created and out.customer_id == "c2"
    assert [i.hash for i in out.added] == ["u2"]
    assert [i.hash for i in out.newly_shared] == ["dev"]
    assert out.blocked == []
    # The device stays with its first customer and resolves there alone ...
    assert view.owner_of["dev"] == "c1"
    alone = view.link([anon("dev")], LATER, new_id)
    assert alone is not None and alone.customer_id == "c1"
    # ... but no longer bridges anything, and is reported shared only once.
    again = view.link([anon("dev"), email("e9")], LATER, new_id)
    assert again is not None and again.customer_id == "c3"
    assert again.newly_shared == []


def test_same_user_on_the_same_device_is_not_a_shared_device() -> None:
    view = GraphView()
    new_id = seq_ids()
    view.link([anon("dev")], T0, new_id)
    view.link([anon("dev"), user("u1")], T0, new_id)
    out = view.link([anon("dev"), user("u1")], LATER, new_id)
    assert out is not None and out.newly_shared == [] and out.customer_id == "c1"


def test_shared_device_threshold_is_configurable() -> None:
    family = MergePolicy(limits={"user_id": 3}, shared_device_max_user_ids=2)
    view = GraphView()
    new_id = seq_ids()
    view.link([anon("tablet"), user("mum")], T0, new_id, family)
    out = view.link([anon("tablet"), user("dad")], T0, new_id, family)
    assert out is not None and out.newly_shared == [] and out.customer_id == "c1"
    out = view.link([anon("tablet"), user("kid")], T0, new_id, family)
    assert out is not None and [i.hash for i in out.newly_shared] == ["tablet"]
    assert out.customer_id != "c1"


def test_device_first_seen_with_two_user_ids_is_shared_at_once() -> None:
    view = GraphView()
    out = view.link([anon("kiosk"), user("u1"), user("u2")], T0, seq_ids())
    assert out is not None
    assert [i.hash for i in out.newly_shared] == ["kiosk"]
    assert view.owner_of["kiosk"] == out.customer_id
    assert "kiosk" in view.shared


def test_priority_decides_which_side_wins() -> None:
    # Two customers each with a user id, bridged by a card and an email: the
    # side holding the loyalty card (higher priority than email) wins.
    view = GraphView()
    view.know("u1", "a", T0, id_type="user_id")
    view.know("e1", "a", T0, id_type="email")
    view.know("u2", "b", LATER, id_type="user_id")
    view.know("card", "b", LATER, id_type="loyalty_card")
    out = view.link([email("e1"), card("card")], LATER, seq_ids())
    assert out is not None and out.customer_id == "b"
    assert out.blocked[0].kept_by == "a"
    custom = MergePolicy(priority=("email", "loyalty_card"))
    out = view.link([email("e1"), card("card")], LATER, seq_ids(), custom)
    assert out is not None and out.customer_id == "a"


def test_permissive_policy_links_everything() -> None:
    view = GraphView()
    out = view.link([user("u1"), user("u2"), anon("d")], T0, seq_ids(), PERMISSIVE)
    assert out is not None and len(out.added) == 3 and out.blocked == []


def test_default_policy_limits() -> None:
    assert DEFAULT_POLICY.limits == {"user_id": 1, "email": 5, "phone": 5}
    assert DEFAULT_POLICY.shared_device_max_user_ids == 1
    assert DEFAULT_POLICY.priority[0] == "user_id"
    assert DEFAULT_POLICY.priority[-1] == "anonymous_id"


def test_event_with_only_shared_devices_resolves_to_the_first_ones_customer() -> None:
    view = GraphView()
    view.know("d1", "a", T0, shared=True)
    view.know("d2", "b", LATER, shared=True)
    out = view.link([anon("d1"), anon("d2")], LATER, seq_ids())
    assert out is not None and out.customer_id == "a"
    assert out.added == [] and out.merged_customer_ids == []


def test_customers_split_apart_do_not_merge_again() -> None:
    view = GraphView()
    view.know("e1", "a", T0, id_type="email")
    view.know("p1", "b", LATER, id_type="phone")
    view.forbid("a", "b")
    out = view.link([email("e1"), phone("p1")], LATER, seq_ids())
    assert out is not None and out.customer_id == "a" and out.merged_customer_ids == []
    assert [(b.kept_by, b.reason) for b in out.blocked] == [("b", "cannot-link")]


def test_split_apart_constraint_follows_a_merge() -> None:
    view = GraphView()
    view.know("e1", "a", T0, id_type="email")
    view.know("p1", "b", LATER, id_type="phone")
    view.know("x1", "c", LATER + timedelta(days=1), id_type="email")
    view.forbid("b", "c")
    # c merges into a (oldest), so a now may not join b.
    merged = view.link([email("e1"), email("x1")], LATER, seq_ids())
    assert merged is not None and merged.merged_customer_ids == ["c"]
    out = view.link([email("e1"), phone("p1")], LATER, seq_ids())
    assert out is not None and out.merged_customer_ids == []
    assert out.blocked[0].reason == "cannot-link"


def test_ignored_values_never_link_or_create() -> None:
    policy = MergePolicy(ignored_hashes=frozenset({"shop-phone"}))
    view = GraphView()
    assert view.link([phone("shop-phone")], T0, seq_ids(), policy) is None
    out = view.link([phone("shop-phone"), user("u1")], T0, seq_ids(), policy)
    assert out is not None and [i.hash for i in out.added] == ["u1"]
    assert "shop-phone" not in view.owner_of


def test_new_device_shared_at_once_among_one_customers_user_ids_is_stored() -> None:
    # Limits that allow two user ids: the device is still shared (threshold
    # 1) and must be kept with the customer, not lost.
    policy = MergePolicy(limits={"user_id": 2}, shared_device_max_user_ids=1)
    view = GraphView()
    view.know("u1", "c", T0, id_type="user_id")
    view.know("u2", "c", T0, id_type="user_id")
    out = view.link([anon("new-dev"), user("u1"), user("u2")], LATER, seq_ids(), policy)
    assert out is not None and out.customer_id == "c"
    assert [i.hash for i in out.added] == ["new-dev"]
    assert [i.hash for i in out.newly_shared] == ["new-dev"]
