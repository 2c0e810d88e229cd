from __future__ import annotations

from cxloop_cli.restarts import RestartPolicy


def test_back_off_doubles_then_gives_up() -> None:
    p = RestartPolicy(base_s=1, max_s=5, max_crashes=5, window_s=60)
    assert [p.crashed("identity", t) for t in (0, 1, 2, 3)] == [1, 2, 4, 5]
    assert p.crashed("identity", 4) is None
    # Another service has its own record.
    assert p.crashed("consent", 4) == 1


def test_crashes_outside_the_window_are_forgotten() -> None:
    p = RestartPolicy(base_s=1, max_crashes=2, window_s=60)
    assert p.crashed("identity", 0) == 1
    assert p.crashed("identity", 100) == 1
    assert p.crashed("identity", 101) is None
