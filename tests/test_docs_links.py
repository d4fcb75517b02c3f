"""The product documents (README.md, CHANGELOG.md, docs/**/*.md: the guides and the experiment record
in docs/experiments/) link only to files that exist in the repository, and speak of the software rather
than of the history of its making; every page of the experiment record is listed in its index.

A relative link's file part must exist (its #anchor is not checked); links to web addresses are not
fetched. Fenced code blocks and inline code are not links, so they are not checked for links, but the
text rules (no links or mentions of `../shared`, no issue numbers, no "this session" / "next
session") apply to every line, code included.
"""

import os
import re
import urllib.parse

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _markdown_under(folder):
    """Every .md file under `folder`, at any depth, in a stable order."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        found += [os.path.join(root, name) for name in sorted(names) if name.endswith(".md")]
    return sorted(found)


def _documents():
    paths = [os.path.join(REPO, name) for name in ("README.md", "CHANGELOG.md")]
    paths += _markdown_under(os.path.join(REPO, "docs"))
    return [path for path in paths if os.path.isfile(path)]


DOCUMENTS = _documents()

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target); the target may be <bracketed> and may carry a "title".
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+\"[^\"]*\"|\s+'[^']*')?\s*\)")
# [label]: target (reference definitions)
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")

_FORBIDDEN = [
    (re.compile(r"\.\./shared\b"), "a link to or mention of ../shared (outside the repository)"),
    (re.compile(r"\bissues?\s*#?\d+", re.IGNORECASE), "an issue number"),
    (re.compile(r"\b(this|next)\s+session\b", re.IGNORECASE), "'this session' / 'next session'"),
]


def _relative(path, root=REPO):
    return os.path.relpath(path, root)


def _link_targets(path):
    """(line number, target) of every link outside code in a Markdown file."""
    targets, in_fence = [], False
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if _FENCE.match(line):
                in_fence = not in_fence
                continue
            if in_fence:
                continue
            text = _INLINE_CODE.sub("", line)
            found = [m.group(1) for m in _INLINE_LINK.finditer(text)]
            reference = _REFERENCE_LINK.match(text)
            if reference:
                found.append(reference.group(1))
            targets += [(number, target.strip("<>")) for target in found]
    return targets


def _broken_links(path, root=REPO):
    """Lines of `path` whose relative link's file part is missing or lies outside `root`."""
    broken = []
    for number, target in _link_targets(path):
        if not target or target.startswith("#") or _SCHEME.match(target) or target.startswith("//"):
            continue  # an anchor in the same page, or a web address
        file_part = urllib.parse.unquote(target.split("#", 1)[0].split("?", 1)[0])
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part))
        inside = os.path.commonpath([resolved, root]) == root
        if not inside or not os.path.exists(resolved):
            why = "points outside the repository" if not inside else "does not exist"
            broken.append(f"{_relative(path, root)}:{number}: link {target!r} {why}")
    return broken


def _forbidden_mentions(path, root=REPO):
    """Every bookkeeping mention in `path`, one line of the report each."""
    found = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            for pattern, what in _FORBIDDEN:
                for match in pattern.finditer(line):
                    found.append(f"{_relative(path, root)}:{number}: {what}: {match.group(0)!r}")
    return found


def test_the_documents_are_found():
    names = {_relative(path) for path in DOCUMENTS}
    assert "README.md" in names and "CHANGELOG.md" in names
    assert any(name.startswith("docs" + os.sep) for name in names)
    assert os.path.join("docs", "experiments", "README.md") in names, "the experiment record is not checked"


def _unlisted_studies(folder):
    """Pages of the experiment record in `folder` that its README.md does not link to."""
    index = os.path.join(folder, "README.md")
    listed = set()
    for _, target in _link_targets(index):
        file_part = urllib.parse.unquote(target.split("#", 1)[0])
        if file_part and not _SCHEME.match(file_part):
            listed.add(os.path.normpath(os.path.join(folder, file_part)))
    pages = [path for path in _markdown_under(folder) if path != index]
    return [_relative(path, folder) for path in pages if path not in listed]


def test_every_study_is_listed_in_the_experiment_record():
    folder = os.path.join(REPO, "docs", "experiments")
    unlisted = _unlisted_studies(folder)
    assert not unlisted, "docs/experiments/README.md does not list:\n" + "\n".join(unlisted)


@pytest.mark.parametrize("path", DOCUMENTS, ids=_relative)
def test_relative_links_point_to_files_in_the_repository(path):
    broken = _broken_links(path)
    assert not broken, "broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize("path", DOCUMENTS, ids=_relative)
def test_no_bookkeeping_in_the_documents(path):
    found = _forbidden_mentions(path)
    assert not found, "the documents speak of the software, not of its making:\n" + "\n".join(found)


def test_the_checks_catch_what_they_should(tmp_path):
    """Both checks on a page written to break each rule once, so a pattern that matches nothing cannot pass."""
    root = str(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "figure.png").write_bytes(b"")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "[ok](page.md) [ok too](page.md#section) ![up](../figure.png) [web](https://example.com) [anchor](#here)\n"
        "[missing](nothing_here.md#anchor) ![figure](missing.png) [outside](../../elsewhere.md)\n"
        "```\n[inside a code block](not_a_link.md)\n```\n"
        "`[inline code](not_a_link_either.md)` and [titled](page.md \"a title\")\n"
        "[ref]: also_missing.md\n"
        "See ../shared/METHOD.md. Done in issue 17; see Issue #4 and issue#5.\n"
        "Measured in this session; the next  session will tell. A session column, issues of speed.\n",
        encoding="utf-8")
    broken = _broken_links(str(page), root)
    assert broken == [
        "docs/page.md:2: link 'nothing_here.md#anchor' does not exist",
        "docs/page.md:2: link 'missing.png' does not exist",
        "docs/page.md:2: link '../../elsewhere.md' points outside the repository",
        "docs/page.md:7: link 'also_missing.md' does not exist"], broken
    mentions = [line.rsplit(": ", 1)[1] for line in _forbidden_mentions(str(page), root)]
    assert mentions == ["'../shared'", "'issue 17'", "'Issue #4'", "'issue#5'", "'this session'",
                        "'next  session'"], mentions


def test_nested_pages_are_checked_and_listed(tmp_path):
    """A page two folders down is found and its links are resolved from its own folder; a study the
    index does not list is reported."""
    record = tmp_path / "docs" / "experiments"
    record.mkdir(parents=True)
    (tmp_path / "docs" / "figure.png").write_bytes(b"")
    (record / "README.md").write_text("[listed](listed.md)\n", encoding="utf-8")
    (record / "listed.md").write_text("![ok](../figure.png) [bad](figure.png)\n", encoding="utf-8")
    (record / "forgotten.md").write_text("\n", encoding="utf-8")
    found = [_relative(path, str(tmp_path)) for path in _markdown_under(str(tmp_path / "docs"))]
    assert found == [os.path.join("docs", "experiments", name) for name in ("README.md", "forgotten.md", "listed.md")]
    assert _broken_links(str(record / "listed.md"), str(tmp_path)) == [
        "docs/experiments/listed.md:1: link 'figure.png' does not exist"]
    assert _unlisted_studies(str(record)) == ["forgotten.md"]
