"""The file access the sans-IO config reader needs, on CPython."""
import glob
import os


class LocalFiles:
    def read(self, path):
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def glob(self, pattern):
        # Fluent Bit reads glob matches unsorted (GLOB_NOSORT); sorted is the predictable
        # subset of that behaviour.
        return sorted(glob.glob(pattern))

    def identity(self, path):
        st = os.stat(path)
        return (st.st_dev, st.st_ino)
