"""The three ways Fluent Bit splits an option value into words. Filters must use the one
the original plugin uses, because they differ on quotes and on what is left over:

split_fields   flb_utils_split: no quotes; after ``max_split`` words the rest of the line,
               exactly as written after one separator (grep ``Regex KEY REGEX``); the
               separator is a space unless ``sep`` says otherwise (geoip2's ``.`` paths).
split_quoted   flb_utils_split_quoted: "double" or 'single' quoted words with \\" escapes
               (modify rules and conditions).
split_tokens   flb_slist_split_tokens, the config map's SLIST_N: double quotes only; after
               ``max_split`` words the rest, leading blanks skipped (record_modifier Record,
               rewrite_tag Rule, type_converter).

And ``ascii_lower``, C's tolower on every byte, for the plugins that compare words ignoring
case as Fluent Bit does (strcasecmp, tolower): only A-Z change.
"""

_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def ascii_lower(text):
    """``text`` with A-Z in lowercase and every other character as it is."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)



def _split(line, max_split, quoted, sep=" "):
    words = []
    i = 0
    n = len(line)
    while i < n:
        while i < n and line[i] == sep:
            i += 1
        if quoted and i < n and line[i] in "\"'":
            word, i = _quoted_word(line, i)
        else:
            end = line.find(sep, i)
            if end <= 0 or end == i:
                end = n
            word = line[i:end]
            i = end
        words.append(word)
        i += 1  # the separator
        if max_split and len(words) >= max_split and i < n:
            words.append(line[i:])
            break
    return words


def _quoted_word(line, start):
    """A quoted word from ``start`` (the quote): its text and the index after the closing
    quote; ValueError when the quote is never closed (flb_utils: "Parsing failed")."""
    quote = line[start]
    out = []
    i = start + 1
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] in (quote, "\\"):
            out.append(line[i + 1])
            i += 2
            continue
        if c == quote:
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise ValueError("unterminated quote in '%s'" % line)


def split_fields(line, max_split=0, sep=" "):
    return _split(line, max_split, False, sep)


def split_quoted(line, max_split=0):
    return _split(line, max_split, True)


def split_tokens(line, max_split=0):
    words = []
    i = 0
    n = len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        if i >= n:
            break
        if line[i] == '"':
            start = i + 1
            end = start
            while True:
                end = line.find('"', end)
                if end < 0 or line[end - 1] != "\\":
                    break
                end += 1
            if end < 0:  # no closing quote: the rest, as written
                words.append(line[start:])
                break
            words.append(line[start:end].replace('\\"', '"'))
            i = end + 1
        else:
            end = line.find(" ", i)
            if end < 0:
                words.append(line[i:])
                break
            words.append(line[i:end])
            i = end + 1
        if max_split and len(words) >= max_split:
            rest = line[i:].lstrip(" ")
            if rest:
                words.append(rest)
            break
    return words
