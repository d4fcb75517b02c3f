import os

# Quiet TensorFlow's C++ start-up logs in test output; set before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import numpy as np  # noqa: E402
import pytest  # noqa: E402

# A skipped test is a test that did not run: where this variable is set (CI sets it: .ci/run), a skip is
# reported as a failure that names the skip's reason, so a run cannot pass while a test did not run. An xfail
# stays an xfail. `make test` lists every skip with its reason (-rs) either way.
FAIL_ON_SKIP = "LEGAN_TF_FAIL_ON_SKIP"


def _failing_on_skip() -> bool:
    return os.environ.get(FAIL_ON_SKIP, "").strip() not in ("", "0")


def _skip_as_failure(report):
    """A CallInfo whose exception is the failure standing for a skipped `report`: the skip's reason first (the
    short summary line is cut at the terminal's width), then why it fails."""
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    message = f"skipped: {reason.removeprefix('Skipped: ')} ({FAIL_ON_SKIP} is set: a skipped test fails)"
    return pytest.CallInfo.from_call(lambda: pytest.fail(message, pytrace=False), when=report.when)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and _failing_on_skip():
        return pytest.TestReport.from_item_and_call(item, _skip_as_failure(report))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """A module that skips itself whole (pytest.importorskip at import) is a collection error under FAIL_ON_SKIP."""
    report = yield
    if report.skipped and _failing_on_skip():
        # As text: pytest-xdist then reports the module once, not once per worker that collected it.
        failure = str(collector.repr_failure(_skip_as_failure(report).excinfo))
        return pytest.CollectReport(report.nodeid, "failed", failure, [], report.sections)
    return report


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny, untrained Q saved as .keras (32 px), for tests of the scripts that load one."""
    from legan_tf.models.quality import QualityModel

    model = QualityModel(image_size=32, base_filters=4, num_downsamples=3, dense_units=8)
    model(np.zeros((1, 32, 32, 3), np.float32))
    path = str(tmp_path_factory.mktemp("model") / "q.keras")
    model.save(path)
    return path


@pytest.fixture(scope="module")
def generator_file(tmp_path_factory):
    """A tiny untrained StarGAN generator in a run directory's layout (generator.keras + labels.json), for
    the 32 px lab's 6 expressions x 4 lights: tests of the tools that take a run's generator."""
    import json

    from legan_tf.data.config import numbered_names
    from legan_tf.models.stargan import StarGANGenerator

    run = tmp_path_factory.mktemp("run")
    generator = StarGANGenerator(image_size=32, num_labels=10, base_filters=4, num_downsamples=2,
                                 num_residual_blocks=1)
    generator((np.zeros((1, 32, 32, 3), np.float32), np.zeros((1, 10), np.float32)))
    generator.save(str(run / "generator.keras"))
    with open(run / "labels.json", "w") as handle:
        json.dump({"expression": ["neutral", "smile", "surprise", "squint", "disgust", "scream"],
                   "lighting": list(numbered_names(4))}, handle)
    return str(run / "generator.keras")


# The test files that take longest (wall time on 2 cores, from `pytest --durations`: each starts many
# TensorFlow processes), longest first. `make test` runs files on two workers in collection order
# (pytest-xdist --dist loadfile); started last, one of these would leave a worker running alone for
# minutes at the end, so they are collected first and the many short files fill in behind them.
SLOWEST_FILES = (
    "tests/training/test_multi_worker.py",
    "tests/training/test_train_script.py",
    "tests/training/test_jax_backend.py",
    "tests/training/test_backends.py",
    "tests/tasks/test_mirrored_equality.py",
    "tests/training/test_kill_resume.py",
    "tests/training/test_depth_train_script.py",
    "tests/photos/test_edit_photo.py",
    "tests/test_face_lab_learnability.py",
    "tests/test_benchmark_script.py",
    "tests/training/test_precision.py",
    "tests/evaluation/test_joint_edits.py",
    "tests/serving/test_serving.py",
    "tests/test_commands.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {path: index for index, path in enumerate(SLOWEST_FILES)}
    root = str(config.rootpath)

    def file_rank(item):
        path = os.path.relpath(str(item.path), root).replace(os.sep, "/")
        return rank.get(path, len(SLOWEST_FILES))

    items.sort(key=file_rank)  # stable: the order within a file, and of the other files, is kept
