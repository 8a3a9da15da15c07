from edgeship.core.ring import ByteRing


def test_keys_keep_arrival_order_and_bytes_add_up():
    ring = ByteRing()
    for i in range(5):
        ring.add(i, 10 * (i + 1))
    assert ring.keys() == [0, 1, 2, 3, 4]
    assert ring.bytes == 150
    assert ring.remove(2) == 30
    assert ring.remove(2) is None
    assert ring.keys() == [0, 1, 3, 4]
    assert ring.bytes == 120
    assert len(ring) == 4 and 3 in ring and 2 not in ring


def test_no_limit_means_no_victims():
    ring = ByteRing(0)
    ring.add("a", 10 ** 9)
    assert not ring.over(10 ** 9)
    assert ring.victims(10 ** 9) == []


def test_victims_are_the_oldest_that_make_room():
    ring = ByteRing(100)
    for key in "abcd":
        ring.add(key, 25)
    assert not ring.over()
    assert ring.victims() == []
    # 30 more bytes need 30 freed: the two oldest (25 is not enough).
    assert ring.victims(30) == ["a", "b"]
    assert ring.over(1)


def test_victims_skip_kept_keys():
    ring = ByteRing(50)
    for key in "abc":
        ring.add(key, 20)
    assert ring.victims() == ["a"]
    assert ring.victims(keep=lambda k: k == "a") == ["b"]
    # Nothing else may go: it frees what it can.
    assert ring.victims(100, keep=lambda k: k != "c") == ["c"]


def test_grow_changes_the_size_of_a_key():
    ring = ByteRing(100)
    ring.add("open", 0)
    ring.grow("open", 60)
    ring.grow("open", 60)
    assert ring.size("open") == 120
    assert ring.bytes == 120
    assert ring.victims() == ["open"]


def test_a_key_added_again_takes_its_new_place():
    ring = ByteRing(10)
    ring.add("x", 5)
    ring.add("y", 5)
    ring.remove("x")
    ring.add("x", 5)
    assert ring.keys() == ["y", "x"]
    assert ring.victims(5) == ["y"]
    try:
        ring.add("x", 1)
        assert False, "a key may be in the ring once"
    except KeyError:
        pass


def test_many_removals_keep_the_order_list_small():
    ring = ByteRing()
    ring.add("pinned", 1)
    for i in range(1000):
        ring.add(i, 1)
        ring.remove(i)
    assert ring.keys() == ["pinned"]
    assert len(ring._order) < 200
    ring.remove("pinned")
    assert ring.keys() == [] and ring.bytes == 0
