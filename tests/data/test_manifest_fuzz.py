"""Damaged manifests, generated here, through every CSV reader in both --on_error modes.

Each case must end in a clear DataError (one message naming the manifest and what is wrong) or in
a counted, reported skip of the bad rows, never a crash (any other exception), a hang or a silent
drop (rows that vanish without a fault). The image-level faults are tests/data/test_bad_input.py's.
"""

import os

import pytest

from legan_tf.data import DataError, open_source

MANIFEST_READERS = ["ratings", "multipie", "csv", "rgbd"]


def _damage(layout, kind):
    """Rewrites the layout's manifest with one kind of damage; returns how many data rows it now has."""
    path = layout.data_path
    text = open(path, encoding="utf-8").read()
    lines = text.splitlines()
    header, rows = lines[0], lines[1:]
    if kind == "extra_column":
        lines = [header + ",note"] + [row + ",x" for row in rows]
    elif kind == "duplicate_rows":
        lines = [header] + rows + rows[:2]
    elif kind == "unterminated_quote":
        lines = [header] + rows[:1] + ['"' + rows[1]] + rows[2:]
    elif kind == "blank_lines":
        lines = [header, ""] + rows[:1] + ["", "  "] + rows[1:]
    elif kind == "non_utf8":
        with open(path, "wb") as handle:
            handle.write(("\n".join([header] + rows[:1]) + "\n").encode() + b"\xff\xfe\xfa,bad\n"
                         + ("\n".join(rows[1:]) + "\n").encode())
        return len(rows) + 1
    elif kind == "bom":
        with open(path, "wb") as handle:
            handle.write(b"\xef\xbb\xbf" + text.encode())
        return len(rows)
    elif kind == "crlf":
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write("\r\n".join(lines) + "\r\n")
        return len(rows)
    elif kind == "escaping_path":
        first = rows[0].split(",")
        first[0] = "../" * 12 + "etc/passwd"
        lines = [header, ",".join(first)] + rows[1:]
    elif kind == "absolute_missing_path":
        first = rows[0].split(",")
        first[0] = "/nonexistent/face.png"
        lines = [header, ",".join(first)] + rows[1:]
    elif kind == "header_only_whitespace":
        lines = [" " + header.replace(",", " , ")] + rows
    elif kind == "nul_bytes":
        lines = [header, rows[0].replace(",", "\x00,", 1)] + rows[1:]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("\n".join(lines) + "\n")
    return len(lines) - 1


KINDS = ["extra_column", "duplicate_rows", "unterminated_quote", "blank_lines", "non_utf8", "bom", "crlf",
         "escaping_path", "absolute_missing_path", "header_only_whitespace", "nul_bytes"]


@pytest.mark.parametrize("on_error", ["fail", "skip"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reader", MANIFEST_READERS)
def test_a_damaged_manifest_is_an_error_or_a_counted_skip(make_layout, tmp_path, reader, kind, on_error):
    layout = make_layout(reader)
    written = _damage(layout, kind)
    report = tmp_path / "report" / "skipped.csv"
    config = layout.config(on_error=on_error, skipped_report=str(report)) if on_error == "skip" else layout.config()
    try:
        source = open_source(config)
    except DataError as error:
        message = str(error)
        assert message and "\n" not in message.strip(), message  # one clear line
        return
    # Loaded: every data row is either an example or a reported fault; none vanished unaccounted.
    faults = len(source.faults) if hasattr(source, "faults") else 0
    assert source.num_examples > 0
    assert source.num_examples + faults + getattr(source, "duplicates", 0) >= min(written, layout.count), (
        kind, source.num_examples, faults, written)
    if faults and on_error == "skip":
        assert os.path.exists(report)


@pytest.mark.parametrize("kind, words", [
    ("unterminated_quote", "field runs over"),   # it would otherwise swallow every following row
    ("non_utf8", "not UTF-8 text (byte 0xff on line 3)"),
    ("nul_bytes", "a NUL byte on line 2"),
])
def test_the_structural_damages_name_the_line(make_layout, kind, words):
    layout = make_layout("multipie")
    _damage(layout, kind)
    with pytest.raises(DataError, match=words.replace("(", r"\(").replace(")", r"\)")):
        open_source(layout.config(on_error="skip"))


def test_duplicate_rows_load_as_repeated_examples(make_layout):
    # A repeated row is the same face twice (oversampling), not damage: it is read, not dropped.
    layout = make_layout("multipie")
    count = layout.count
    _damage(layout, "duplicate_rows")
    assert open_source(layout.config()).num_examples == count + 2
