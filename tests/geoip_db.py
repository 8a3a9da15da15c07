"""A small City-like MaxMind DB written by the test itself (mmdb-writer, the test extra): the
records of GeoIP2 City's shape, plus one entry holding every MaxMind DB data type. The
outputs the geoip2 tests compare with were captured from Fluent Bit 5.1.1 reading the file
this writes (no downloaded GeoLite DB anywhere)."""


def city_entries():
    """(networks, data) of the database, built when the writer is importable."""
    from mmdb_writer import MmdbF32, MmdbF64, MmdbI32, MmdbU16, MmdbU32, MmdbU64, MmdbU128
    london = {
        "city": {"names": {"en": "London", "de": "London"}, "geoname_id": MmdbU32(2643743)},
        "country": {"iso_code": "GB", "names": {"en": "United Kingdom"},
                    "geoname_id": MmdbU32(2635167), "is_in_european_union": False},
        "location": {"latitude": MmdbF64(51.5142), "longitude": MmdbF64(-0.0931),
                     "accuracy_radius": MmdbU16(10), "time_zone": "Europe/London"},
        "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}},
                         {"iso_code": "WSM", "names": {"en": "Westminster"}}],
        "postal": {"code": "EC4"},
        "types": {"u16": MmdbU16(65535), "u32": MmdbU32(4294967295),
                  "u64": MmdbU64(18446744073709551615), "u128": MmdbU128(5),
                  "u128big": MmdbU128(2 ** 100),
                  "i32": MmdbI32(-5), "f32": MmdbF32(1.5), "f32b": MmdbF32(0.1),
                  "f64": MmdbF64(0.1), "t": True, "f": False, "bytes": b"\x00ab",
                  "empty": "", "uni": "Z\u00fcrich", "emptymap": {}},
        "a.b": "dotted",
        "": "emptykey",
        # (the writer shares equal values, and 1 == True: keep numbers in arrays apart)
        "arr": ["x", "y", "z", {"k": "v"}, [7, 9]],
    }
    return [
        (["81.2.69.0/24"], london),
        (["2001:db8::/32"], {"country": {"iso_code": "ZZ", "names": {"en": "Docland"}}}),
        (["10.0.0.0/8"], {"country": {"iso_code": "XX"}}),
        (["127.0.0.0/8"], "just a string"),
        (["fe80::/16"], {"country": {"iso_code": "LL"}}),
    ]


def write_city_db(path, ip_version=6):
    """Write the database to ``path``: IPv6 with the IPv4 space at ::/96 (as GeoIP2 City),
    or an IPv4-only one (``ip_version=4``, its IPv6 networks left out)."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet
    writer = MMDBWriter(ip_version=ip_version, ipv4_compatible=ip_version == 6,
                        database_type="GeoIP2-City", languages=["en"],
                        description="edgeship test")
    for networks, data in city_entries():
        if ip_version == 4 and ":" in networks[0]:
            continue
        writer.insert_network(IPSet(networks), data)
    writer.to_db_file(str(path))
    return path
