from edgeship.core.backoff import UNLIMITED, out_of_retries, parse_retry_limit, retry_wait


def test_retry_limit_words():
    assert parse_retry_limit("3") == 3
    assert parse_retry_limit("no_limits") is UNLIMITED and parse_retry_limit("False") is UNLIMITED
    assert parse_retry_limit("no_retries") == 0
    assert parse_retry_limit("0") == 1 and parse_retry_limit("-2") == 1


def test_out_of_retries():
    assert not out_of_retries(1, 1) and out_of_retries(2, 1)
    assert out_of_retries(1, 0)
    assert not out_of_retries(10 ** 6, UNLIMITED)


def test_first_retry_waits_6_to_11_seconds_by_default():
    assert retry_wait(1, rand=lambda: 0.0) == 6
    assert retry_wait(1, rand=lambda: 1.0) == 11
    assert retry_wait(30, base=5, cap=2000, rand=lambda: 1.0) == 2001


def test_reconnects_use_the_same_jittered_backoff_without_the_extra_second():
    from edgeship.core.backoff import jittered
    assert jittered(1, 0.5, 30, rand=lambda: 0.0) == 0.5
    assert jittered(1, 0.5, 30, rand=lambda: 1.0) == 1.0
    assert jittered(10, 0.5, 30, rand=lambda: 1.0) == 30
    assert jittered(3, 0.5, 0.2, rand=lambda: 1.0) == 0.5     # a cap below the base
    assert retry_wait(2, 5, 2000, rand=lambda: 0.5) == jittered(2, 5, 2000, lambda: 0.5) + 1
