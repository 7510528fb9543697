"""Text encodings of data files: which names Python can decode with (checked when an option is given).

In core because the configs check `--encoding` as they are built, before any data module is imported.
"""

from __future__ import annotations

UNKNOWN_ENCODING = "unknown text encoding (give a Python codec name: utf-8, gbk, gb18030, big5, latin-1, cp1252, ...)"


def check_encoding(encoding: str) -> bool:
    """Whether `encoding` is 'auto' or a text codec Python knows (gbk, gb18030, latin-1, cp1252, ...)."""
    if encoding == "auto":
        return True
    try:  # not b"": decoding nothing skips the codec lookup
        b"a".decode(encoding)  # LookupError for unknown names and for bytes-to-bytes codecs (base64, zlib)
    except LookupError:
        return False
    except UnicodeDecodeError:  # a known codec (utf-16 needs two bytes)
        pass
    return True
