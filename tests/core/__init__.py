# A package, so tests/core/test_X.py and tests/test_X.py may share a basename.
