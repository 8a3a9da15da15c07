from edgeship.core.tagmatch import Matcher, RouteCache, glob_match


def test_glob_rules_checked_on_fluent_bit():
    assert not glob_match("a.*", "a")
    assert glob_match("a.*", "a.")
    assert glob_match("a.*", "a.b.c")
    assert glob_match("*a*", "a")
    assert glob_match("my*cpu", "my_cpu")
    assert glob_match("*", "")
    assert not glob_match("App.*", "app.x")  # case-sensitive
    assert glob_match("*.error", "svc.error")
    assert not glob_match("*.error", "svc.errors")
    assert glob_match("a*b*c", "abc")
    assert not glob_match("a*b*c", "acb")
    assert glob_match("a**b", "ab")


def test_route_cache_resolves_once_per_tag():
    class T:
        def __init__(self, pattern):
            self.matcher = Matcher(pattern)

    a, b = T("app.*"), T("*")
    cache = RouteCache([a, b])
    assert cache.resolve("app.x") == [a, b]
    assert cache.resolve("metrics") == [b]
    assert "app.x" in cache.cache
