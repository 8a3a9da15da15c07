"""Text: Fluent Bit's regexes (Onigmo, Ruby syntax) as Python ``re``, and the multiline
machinery that joins lines into records (CPython; may import edgeship.core only).

    onigmo      Onigmo patterns -> compiled ``re``, named captures mapped back
    multiline   [MULTILINE_PARSER] rules and the built-in docker, cri, python, java, go, ruby
"""
