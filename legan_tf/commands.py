"""`legan-tf <command> [flags]`: the project's jobs as one command on the PATH (installed by pip).

Each command runs one of the scripts in the repository's `scripts/` and `serving/` folders, with the same
flags (`legan-tf edit --help` is `python scripts/edit_photo.py --help`). The wheel carries those scripts as
`legan_tf.scripts` and `legan_tf.serving_scripts`; from a checkout they are run where they are. Every script of
those two folders is a command (tests/test_commands.py); the maintenance tools (`tools/`) and the studies
(`studies/`) are run as files from a checkout and are not in the wheel.
"""

import os
import runpy
import sys
from typing import Dict, List, Optional, Tuple

# command -> (folder, script, what it does); the order is the order of --help, group by group (GROUPS).
COMMANDS: Dict[str, Tuple[str, str, str]] = {
    "train": ("scripts", "train", "train a recipe (--flagfile=configs/<dataset>/<preset>.flags)"),
    "prepare": ("scripts", "prepare_data", "turn a dataset folder into TFRecord shards"),
    "unpack-fer2013": ("scripts", "unpack_fer2013", "unpack Kaggle's fer2013.csv into image folders"),
    "synthetic": ("scripts", "make_synthetic", "render the synthetic face lab"),
    "align": ("scripts", "align_faces", "find, align and crop the faces of photos"),
    "depth": ("scripts", "make_depth", "depth and normal maps of faces from a fitted face mesh"),
    "relight": ("scripts", "relight_faces", "real faces under a grid of directional lights"),
    "augment": ("scripts", "augment", "balance a labelled dataset with a generator's edits, kept by Q"),
    "benchmark": ("scripts", "benchmark", "time training, inference and input"),
    "edit": ("scripts", "edit_photo", "edit the expression (and lighting) of the faces in a photo"),
    "app": ("scripts", "app", "a local web page that edits the faces of a photo"),
    "export": ("scripts", "export", "export a run's models for TF-Serving"),
    "serve": ("serving", "server", "serve exported models over gRPC (the in-process stand-in)"),
    "client": ("serving", "client", "edit a face through a TF-Serving server"),
    "evaluate": ("scripts", "evaluate", "the papers' metrics of a run"),
    "evaluate-translation": ("scripts", "evaluate_translation", "a GAN run's learning check on unseen face-lab faces"),
    "evaluate-depth": ("scripts", "evaluate_depth", "a depth network's learning check on its held-out faces"),
    "compare": ("scripts", "compare_translations", "learning-check figures of several runs side by side"),
    "judge": ("scripts", "judge_real_edits", "judge a generator's edits of real held-out faces"),
    "judge-joint": ("scripts", "judge_joint_edits", "judge expression and lighting edits of relit held-out faces"),
    "judge-attributes": ("scripts", "judge_attribute_edits",
                         "judge edits of binary attributes (CelebA) on held-out people"),
    "judge-identity": ("scripts", "evaluate_identity", "judge an identity network on held-out people (lab or real)"),
    "get-judge": ("scripts", "get_expression_judge", "fetch an expression judge trained by others (mini-Xception)"),
    "evaluate-quality": ("scripts", "evaluate_quality", "a trained Q against the raters on its held-out split"),
    "score": ("scripts", "score_faces", "score face images with Q (1-10) and keep those that pass"),
    "naturalness": ("scripts", "make_naturalness", "naturalness ratings for Q from your own face photos"),
    "rate": ("scripts", "rating_server", "a browser rating study: people rate faces 1-10"),
}
# The headings of --help, each over its commands (every command in one group, in COMMANDS' order).
GROUPS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("data and training", ("train", "prepare", "unpack-fer2013", "synthetic", "align", "depth", "relight", "augment",
                           "benchmark")),
    ("editing faces", ("edit", "app", "export", "serve", "client")),
    ("judging a run", ("evaluate", "evaluate-translation", "evaluate-depth", "compare", "judge", "judge-joint",
                       "judge-attributes", "judge-identity", "get-judge")),
    ("Q, the naturalness model", ("evaluate-quality", "score", "naturalness", "rate")),
)
PACKAGES = {"scripts": "legan_tf.scripts", "serving": "legan_tf.serving_scripts"}
PROGRAM = "legan-tf"


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"usage: {PROGRAM} <command> [flags]    ({PROGRAM} <command> --help lists a command's flags)"]
    for heading, names in GROUPS:
        lines += ["", f"{heading}:"]
        lines += [f"  {name.ljust(width)}  {COMMANDS[name][2]}" for name in names]
    return "\n".join(lines)


def _checkout_script(folder: str, script: str) -> Optional[str]:
    """The script's file in a source checkout (an editable install): <repo>/<folder>/<script>.py, or None."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(repo, folder, f"{script}.py")
    return path if os.path.isfile(path) else None


def resolve(command: str) -> Tuple[str, str]:
    """("module", name) or ("path", file) of the script that runs `command`; SystemExit(2) for an unknown one."""
    if command not in COMMANDS:
        close = [name for name in COMMANDS if name.startswith(command[:2])]
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise SystemExit(f"{PROGRAM}: unknown command '{command}'{hint}; commands: {', '.join(COMMANDS)}")
    folder, script, _ = COMMANDS[command]
    import importlib.util

    module = f"{PACKAGES[folder]}.{script}"
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if found:
        return "module", module
    path = _checkout_script(folder, script)
    if path is None:
        raise SystemExit(f"{PROGRAM} {command}: neither {module} nor {folder}/{script}.py is installed; "
                         "reinstall legan-tf (pip install <its checkout>)")
    return "path", path


def main(argv: Optional[List[str]] = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(usage())
        return
    kind, target = resolve(argv[1])
    sys.argv = [f"{PROGRAM} {argv[1]}", *argv[2:]]
    if kind == "module":
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.path.insert(0, os.path.dirname(target))
        runpy.run_path(target, run_name="__main__")


if __name__ == "__main__":
    main()
