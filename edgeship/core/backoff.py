"""Retry waits and limits, as Fluent Bit's scheduler computes them (flb_scheduler.c): the one
backoff of edgeship, for chunk retries, input restarts and every reconnect (MQTT link,
firmware link and WiFi)."""
import random

UNLIMITED = None


def parse_retry_limit(text):
    """``N`` -> N retries; ``no_limits``/``false``/``off`` -> UNLIMITED; ``no_retries`` -> 0.

    Fluent Bit warns and uses 1 for N <= 0; raises ValueError for anything else.
    """
    word = text.strip().lower()
    if word in ("no_limits", "false", "off"):
        return UNLIMITED
    if word == "no_retries":
        return 0
    try:
        number = int(word)
    except ValueError:
        raise ValueError("Retry_Limit must be a number, no_limits, false/off or no_retries, "
                         "got '%s'" % text)
    return number if number >= 1 else 1


def jittered(attempt, base, cap, rand=random.random):
    """Seconds before attempt number ``attempt`` (1-based): uniform in
    [base, min(cap, base * 2**attempt)] (backoff_full_jitter)."""
    high = min(cap, base * (2 ** attempt))
    if high < base:
        high = base
    return base + (high - base) * rand()


def retry_wait(attempt, base=5, cap=2000, rand=random.random):
    """A chunk retry's wait: ``jittered`` plus the second Fluent Bit's scheduler adds
    (flb_sched_request_create), so the first retry waits 6-11 s by default."""
    return jittered(attempt, base, cap, rand) + 1


def out_of_retries(attempt, limit):
    """True when ``attempt`` failed attempts exceed the retry limit."""
    return limit is not UNLIMITED and attempt > limit
