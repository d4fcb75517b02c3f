"""`legan-tf <command>` (legan_tf/commands.py): every command names a script that exists, an unknown one is a
one-line error, and the wheel that `pip install` builds puts `legan-tf` on the PATH with the scripts inside it,
so a photo is edited from outside any checkout."""

import ast
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from legan_tf import commands, pretrained

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_command_runs_a_script_of_the_checkout_and_help_lists_them_all():
    text = commands.usage()
    for name, (folder, script, about) in commands.COMMANDS.items():
        assert f"  {name}" in text and about in text
        assert os.path.isfile(os.path.join(REPO, folder, f"{script}.py")), (name, folder, script)
        kind, target = commands.resolve(name)
        assert (kind, target) in (("module", f"{commands.PACKAGES[folder]}.{script}"),
                                  ("path", os.path.join(REPO, folder, f"{script}.py")))


def test_help_lists_every_command_once_under_a_heading_in_the_order_of_the_table():
    grouped = [name for _, names in commands.GROUPS for name in names]
    assert grouped == list(commands.COMMANDS)
    text = commands.usage()
    for heading, names in commands.GROUPS:
        assert f"\n\n{heading}:\n" in text
        assert all(text.count(f"\n  {name} ") == 1 for name in names)


def test_every_script_of_scripts_and_serving_is_a_command():
    """scripts/ and serving/ hold one thin wrapper per command and nothing else (maintenance tools live in
    tools/, studies in studies/)."""
    on_disk = {(folder, name[:-3]) for folder in commands.PACKAGES
               for name in os.listdir(os.path.join(REPO, folder)) if name.endswith(".py")}
    assert on_disk == {(folder, script) for folder, script, _ in commands.COMMANDS.values()}


@pytest.mark.slow
@pytest.mark.parametrize("command", list(commands.COMMANDS))
def test_every_command_answers_help_with_its_scripts_own_text(command):
    folder, script, _ = commands.COMMANDS[command]
    with open(os.path.join(REPO, folder, f"{script}.py"), encoding="utf-8") as handle:
        first_line = ast.get_docstring(ast.parse(handle.read())).splitlines()[0]
    result = subprocess.run([sys.executable, "-m", "legan_tf.commands", command, "--help"], capture_output=True,
                            text=True, timeout=300, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    # absl's --help prints the script's docstring and its flags, then exits with 1.
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stdout.lstrip().startswith(first_line), result.stdout[:500]


@pytest.mark.parametrize("command, message", [
    ("edti", "unknown command 'edti' (did you mean edit?); commands: train, prepare"),
    ("x", "unknown command 'x'; commands: train"),
])
def test_an_unknown_command_is_one_line_naming_the_commands(command, message):
    with pytest.raises(SystemExit, match=message.replace("(", "\\(").replace(")", "\\)").replace("?", "\\?")):
        commands.resolve(command)


def test_help_without_a_command(capsys):
    commands.main(["legan-tf"])
    assert capsys.readouterr().out.startswith("usage: legan-tf <command> [flags]")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel pip builds from this checkout, installed without dependencies into a folder of its own
    (the dependencies come from the environment running the tests)."""
    root = tmp_path_factory.mktemp("install")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(root / "wheel"), REPO], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    [wheel] = [os.path.join(root / "wheel", name) for name in os.listdir(root / "wheel")]
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                              "--target", str(root / "site"), wheel], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    return {"root": root, "wheel": wheel, "site": str(root / "site")}


@pytest.mark.slow
def test_the_wheel_carries_the_scripts_and_the_entry_point(installed):
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = wheel.namelist()
        entry_points = wheel.read(next(name for name in names if name.endswith("entry_points.txt"))).decode()
    assert "legan-tf = legan_tf.commands:main" in entry_points
    for folder, script, _ in commands.COMMANDS.values():
        assert f"{commands.PACKAGES[folder].replace('.', '/')}/{script}.py" in names, script


@pytest.mark.slow
def test_the_installed_command_edits_a_packaged_photo_with_a_shipped_model_outside_the_checkout(installed, tmp_path):
    from legan_tf.photos import samples

    Image.fromarray(samples.astronaut()).save(tmp_path / "astronaut.jpg")
    # Only the installed copy of legan_tf is importable by that name: PYTHONPATH puts it first, the checkout's
    # folder is not the working directory.
    env = {**os.environ, "PYTHONPATH": installed["site"]}
    program = os.path.join(installed["site"], "bin", "legan-tf")
    where = subprocess.run([sys.executable, "-c", "import legan_tf.scripts.edit_photo as m; print(m.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert where.stdout.strip().startswith(installed["site"]), where.stderr[-2000:]
    edited = subprocess.run([program, "edit", "--model=pretrained:stargan-fer2013-64",
                             "--input=astronaut.jpg", "--expression=happy", "--output=edited.png"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert edited.returncode == 0, edited.stderr[-3000:]
    assert "with pretrained:stargan-fer2013-64 (64 px, fer2013 framing)" in edited.stdout, edited.stdout
    before = np.asarray(Image.open(tmp_path / "astronaut.jpg").convert("RGB"), np.int16)
    after = np.asarray(Image.open(tmp_path / "edited.png").convert("RGB"), np.int16)
    # PNG is lossless and pixels outside the pasted face are the input's: the edit changes the face, and
    # only the face (95 px wide in the 512 x 512 photo: under 5% of it even with its feathered margin).
    changed = np.abs(after - before).max(axis=2) > 0
    assert changed.any() and changed.mean() < 0.05
    bad = subprocess.run([program, "edit", "--model=pretrained:nope", "--input=astronaut.jpg",
                          "--expression=happy", "--output=out.png"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == (
        "error: --model=pretrained:nope: no such pretrained model; the package ships "
        + ", ".join(f"pretrained:{name}" for name in pretrained.names()))
