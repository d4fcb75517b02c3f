"""Under CI a skipped test fails, naming its reason (tests/conftest.py); elsewhere a skip stays a skip.

pytest runs in a subprocess on small generated test files, with the suite's conftest loaded as a plugin,
with and without the variable.
"""

import os
import re
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import FAIL_ON_SKIP

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TESTS = '''
import pytest


def test_runs():
    pass


def test_skips_itself():
    pytest.skip("chromium is missing here")


@pytest.mark.skipif(True, reason="a skipif mark holds")
def test_marked():
    pass


@pytest.fixture
def driver():
    pytest.skip("the fixture found no driver")


def test_with_a_skipping_fixture(driver):
    pass


@pytest.mark.xfail(reason="a known fault", strict=True)
def test_known_fault():
    assert False
'''
REASONS = ("chromium is missing here", "a skipif mark holds", "the fixture found no driver")
WHOLE_MODULE = '''
import pytest

pytest.importorskip("legan_tf_no_such_module", reason="needs legan_tf_no_such_module")


def test_never_collected():
    pass
'''


def _pytest(folder, value, *files):
    env = {key: item for key, item in os.environ.items() if key != FAIL_ON_SKIP}
    if value is not None:
        env[FAIL_ON_SKIP] = value
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")])
    env["COLUMNS"] = "400"  # summary lines are cut at the terminal's width
    # -p tests.conftest: the suite's own hooks; -c: no ini file, so the repository's pytest.ini stays out.
    command = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-c", os.devnull, "--rootdir", str(folder),
               "-p", "no:cacheprovider", "-q", "-rfEs", *[str(folder / name) for name in files]]
    return subprocess.run(command, capture_output=True, text=True, cwd=str(folder), env=env, timeout=120)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "test_generated.py").write_text(textwrap.dedent(TESTS))
    (tmp_path / "test_whole_module.py").write_text(textwrap.dedent(WHOLE_MODULE))
    return tmp_path


def _summary(result):
    """The last line: pytest's counts, e.g. '1 passed, 3 skipped, 1 xfailed in 0.05s'."""
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("value", [None, "0"])
def test_without_the_variable_a_skip_is_listed_with_its_reason_and_the_run_passes(folder, value):
    result = _pytest(folder, value, "test_generated.py", "test_whole_module.py")
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.match(r"1 passed, 4 skipped, 1 xfailed in ", _summary(result)), result.stdout[-3000:]
    for reason in (*REASONS, "needs legan_tf_no_such_module"):
        assert re.search(rf"^SKIPPED \[1\] .*: {reason}$", result.stdout, re.M), (reason, result.stdout[-3000:])


def test_with_the_variable_every_skip_fails_naming_its_reason_and_an_xfail_stays_one(folder):
    result = _pytest(folder, "1", "test_generated.py")
    assert result.returncode == 1, result.stdout[-3000:]
    # The skip inside the test fails it; a skip in setup (a mark, a fixture) is an error at setup.
    assert re.match(r"1 failed, 1 passed, 1 xfailed, 2 errors in ", _summary(result)), result.stdout[-3000:]
    for outcome, test, reason in (("FAILED", "test_skips_itself", REASONS[0]), ("ERROR", "test_marked", REASONS[1]),
                                  ("ERROR", "test_with_a_skipping_fixture", REASONS[2])):
        assert f"skipped: {reason} ({FAIL_ON_SKIP} is set: a skipped test fails)" in result.stdout
        assert re.search(rf"^{outcome} .*::{test} - .*skipped: {reason}", result.stdout, re.M), result.stdout[-3000:]
    assert "SKIPPED" not in result.stdout


def test_with_the_variable_a_module_that_skips_itself_is_an_error_naming_its_reason(folder):
    result = _pytest(folder, "1", "test_whole_module.py")
    assert result.returncode != 0, result.stdout[-3000:]
    assert re.search(r"^ERROR test_whole_module.py - skipped: needs legan_tf_no_such_module", result.stdout, re.M), \
        result.stdout[-3000:]
    assert "SKIPPED" not in result.stdout


def test_ci_runs_every_test_with_the_variable_set_and_both_targets_list_skips():
    with open(os.path.join(REPO, ".ci", "run")) as handle:
        script = handle.read()
    # CI runs every test: the fast loop's and the slow ones, each after the variable is exported.
    assert re.search(rf"^export {FAIL_ON_SKIP}=1$", script, re.M)
    for target in ("test", "test-slow"):
        assert re.search(rf"^make {target}$", script, re.M), target
        assert script.index(f"export {FAIL_ON_SKIP}") < re.search(rf"^make {target}$", script, re.M).start()
    with open(os.path.join(REPO, "Makefile")) as handle:
        makefile = handle.read()
    recipes = {name: re.search(rf"^{name}:.*\n\t(.*)$", makefile, re.M).group(1) for name in ("test", "test-slow")}
    for recipe in recipes.values():
        assert re.search(r" -r[a-zA-Z]*s", recipe), recipe  # every skip listed with its reason
    # Between them the two select every test: one takes the slow mark, the other everything else.
    assert '-m "not slow"' in recipes["test"] and re.search(r" -m slow( |$)", recipes["test-slow"]), recipes


def test_the_slowest_files_collected_first_exist_and_come_first():
    # The conftest's list would rot silently if a file were renamed: every entry must be a test file, and a
    # collection (--collect-only, no test runs) must start with them, in the listed order.
    from tests.conftest import SLOWEST_FILES

    for path in SLOWEST_FILES:
        assert os.path.isfile(os.path.join(REPO, path)), path
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist",
                           *(os.path.join(REPO, path) for path in reversed(SLOWEST_FILES[-3:])),
                           os.path.join(REPO, "tests", "test_ci_skips.py")],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    files = []
    for line in done.stdout.splitlines():
        if "::" in line and line.split("::")[0] not in files:
            files.append(line.split("::")[0])
    assert files == [*SLOWEST_FILES[-3:], "tests/test_ci_skips.py"]
