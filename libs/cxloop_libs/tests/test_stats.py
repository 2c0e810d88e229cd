from cxloop_libs.stats import wilson_interval


def test_wilson_interval_holds_the_observed_rate() -> None:
    for n in range(1, 400):
        for c in (0, 1, n // 3, n - 1, n):
            lo, hi = wilson_interval(c, n)
            assert 0.0 <= lo <= c / n <= hi <= 1.0, (c, n, lo, hi)
    assert wilson_interval(0, 6)[0] == 0.0
    assert wilson_interval(6, 6)[1] == 1.0


def test_wilson_interval_matches_the_textbook_value() -> None:
    # 8 of 10: Wilson 95% interval is about (0.490, 0.943).
    lo, hi = wilson_interval(8, 10)
    assert abs(lo - 0.4902) < 1e-3 and abs(hi - 0.9433) < 1e-3


def test_no_observations_is_the_whole_range() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
