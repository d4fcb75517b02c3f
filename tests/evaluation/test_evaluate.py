"""legan_tf.evaluation.evaluate (and the passes and judges it runs), report and scripts/evaluate.py: the papers'
protocol in one command."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from legan_tf.data.synthetic.writer import write_face_lab
from legan_tf.evaluation import evaluate, real_pass, report, translation
from legan_tf.evaluation.judges import Judge, Judges, judges_used_in_training, load_judges
from legan_tf.evaluation.run_under_test import resolve_run
from legan_tf.evaluation.metrics.features import FeatureExtractor
from legan_tf.models.classifier import AttributeClassifier
from legan_tf.models.legan import LEGANGenerator
from legan_tf.models.lightcnn import IdentityEmbedder, LightCNN29v2
from legan_tf.models.quality import QualityModel
from legan_tf.models.stargan import StarGANGenerator

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "evaluate.py")
EXPRESSIONS = "neutral,smile,surprise,squint,disgust,scream"
# 8 lab faces per edit mode, every held-out face (one identity of three: 24 faces), 2 sample rows.
SMALL = {"num_faces": 8, "num_real": 0, "sample_rows": 2, "progress": False}


def _save(model, path, *inputs):
    model(*inputs)
    model.save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 3-identity lab, an untrained StarGAN and LEGAN run (LEGAN trained against Q and f), and judges."""
    root = tmp_path_factory.mktemp("evaluate")
    write_face_lab(root / "lab", image_size=32, num_identities=3, num_lightings=4, parts=("multipie",),
                   progress=False)
    x = np.zeros((1, 32, 32, 3), np.float32)
    labels = np.zeros((1, 10), np.float32)
    paths = {
        "classifier": _save(AttributeClassifier(image_size=32, head_classes={"expression": 6, "lighting": 4},
                                                base_filters=4, num_downsamples=2), root / "classifier.keras", x),
        "quality": _save(QualityModel(image_size=32, base_filters=4, num_downsamples=2, dense_units=8),
                         root / "q.keras", x),
        "identity": _save(IdentityEmbedder(LightCNN29v2(input_size=16, channels=(4, 4, 4, 4, 4), embedding_dim=8,
                                                        num_blocks=(1, 1, 1, 1))), root / "f.keras", x),
    }
    data = (f"--data_format=multipie\n--data_path={root / 'lab' / 'multipie' / 'manifest.csv'}\n--image_size=32\n"
            f"--expression_names={EXPRESSIONS}\n--num_lightings=4\n--holdout_fraction=0.34\n--split_seed=0\n")
    for name, generator, extra in (
            ("stargan", StarGANGenerator(image_size=32, num_labels=10, base_filters=4, num_residual_blocks=1),
             "--stargan_quality_model=\n--stargan_lambda_qual=0.0\n"),
            ("legan", LEGANGenerator(image_size=32, num_expressions=6, num_lightings=4, base_filters=4,
                                     num_residual_blocks=1),
             f"--legan_quality_model={paths['quality']}\n--legan_lambda_qual=1.0\n"
             f"--legan_identity_model={paths['identity']}\n--legan_lambda_id=1.0\n")):
        (root / name).mkdir()
        _save(generator, root / name / "generator.keras", (x, labels))
        (root / name / "flags.txt").write_text(f"--task={name}\n" + data + extra)
        paths[name] = str(root / name)
    paths["root"] = root
    return paths


def _judges(tiny, **extra):
    return load_judges(classifier=tiny["classifier"], quality_model=tiny["quality"],
                                identity_model=tiny["identity"], **extra)


def _values(content):
    """Every metric value of an evaluation, keyed by model, source and metric (what must repeat exactly)."""
    values = {}
    for model in content["models"]:
        for source, entry in model["sources"].items():
            for key, result in (entry.get("metrics") or {}).items():
                values[model["label"], source, key] = result["values"]
            if entry.get("translation"):
                values[model["label"], source, "translation"] = entry["translation"]["metrics"]
    for baseline in content["baselines"]:
        for row, group in baseline["rows"].items():
            for key, result in group.items():
                values[baseline["source"], row, key] = result["values"]
    return values


def stand_in_extractor():
    """Features = channel means of 8 px images: a stand-in for Inception in tests, never in a report."""
    inputs = keras.Input((8, 8, 3))
    network = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs), name="channel_means")
    return FeatureExtractor(network, image_size=8, source="stand-in", name="channel means", quantize=False)


def test_script_writes_metrics_report_and_figures_and_the_library_repeats_its_numbers(tiny, tmp_path):
    output = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, SCRIPT, f"--run_dir={tiny['stargan']}", f"--compare=LEGAN={tiny['legan']}",
         f"--classifier={tiny['classifier']}", f"--quality_model={tiny['quality']}",
         f"--identity_model={tiny['identity']}", "--inception_weights=none", "--num_faces=8", "--num_real=0",
         "--sample_rows=2", f"--output_dir={output}", "--noprogress_bar"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    content = json.load(open(output / "metrics.json"))
    assert [model["label"] for model in content["models"]] == ["stargan", "LEGAN"]
    legan = content["models"][1]
    # The run's own judges are recognised, and the report says so next to the numbers.
    assert legan["judges_used_in_training"]["quality"]["used"] is True
    assert legan["judges_used_in_training"]["identity"]["used"] is True
    assert content["models"][0]["judges_used_in_training"]["quality"]["used"] is False
    lab, real = legan["sources"]["lab"], legan["sources"]["real"]
    for key in ("ssim", "psnr", "match_score", "quality_score", "generation_rate"):
        assert lab["metrics"][key]["available"], key
    assert lab["metrics"]["generation_rate"]["values"]["count/expression"] == 8
    assert real["metrics"]["reconstruction/ssim"]["values"]["count"] == 24  # every held-out face, there and back
    assert real["metrics"]["quality_score"]["values"]["count_reals"] == 24
    assert lab["translation"]["kind"] == "legan" and "both/l1_reduction" in lab["translation"]["metrics"]
    # Never a number from random weights: FID, KID and LPIPS say why they are missing.
    for key in ("fid", "kid", "lpips"):
        assert not lab["metrics"][key]["available"]
    assert "no Inception-v3 weights given (--inception_weights)" in lab["metrics"]["fid"]["reason"]
    text = (output / "report.md").read_text()
    assert "Q was the generator's own training judge (--legan_quality_model=" in text
    assert "FID: no Inception-v3 weights given" in text and "LPIPS: no LPIPS weights given" in text
    assert "| *LEGAN* (poster's figure) | paper: Multi-PIE, frontal faces | 29.964 |" in text
    assert "Bodur Table 1, AffectNet" in text and "*input unchanged* (baseline)" in text
    assert "| **LEGAN** | lab: exact targets |" in result.stdout
    # Pictures for people: faces at >= 96 px with a title row, one row per sample face.
    for name in ("samples_lab.png", "samples_real.png", "match_scores_lab.png", "confusion_LEGAN_real.png",
                 "translation_samples_stargan.png"):
        assert f"]({name})" in text
    with Image.open(output / "samples_lab.png") as grid:
        assert grid.size[1] >= 2 * 96 + 14  # 2 rows of 32 px faces, upscaled 3x, under a title
    # Same checkpoints, judges and seed: the same numbers, here from another process.
    again = evaluate.evaluate(tiny["stargan"], compare=[f"LEGAN={tiny['legan']}"], judges=_judges(tiny),
                              output_dir=str(tmp_path / "again"), **SMALL)
    assert _values(again) == _values(content)
    # compare_translations.py reads the learning-check figures of evaluate.py's metrics.json.
    rows = translation.read_translation_figures(str(output / "metrics.json"))
    assert [label for label, _ in rows] == ["stargan", "LEGAN"]
    assert rows[1][1] == lab["translation"]["metrics"]


def test_fid_and_kid_on_both_sources_and_the_seed_changes_the_draw(tiny, tmp_path):
    judges = _judges(tiny, inception_extractor=stand_in_extractor())
    first = evaluate.evaluate(tiny["legan"], judges=judges, output_dir=str(tmp_path / "a"), seed=0, **SMALL)
    model = first["models"][0]
    for source, count in (("lab", 8), ("real", 24)):
        fid = model["sources"][source]["metrics"]["fid"]
        assert fid["available"] and fid["protocol"]["num_outputs"] == fid["protocol"]["num_reals"] == count
        assert model["sources"][source]["metrics"]["kid"]["available"]
    assert model["sources"]["lab"]["metrics"]["fid"]["protocol"]["reference"].startswith("the exact renders")
    assert "| **legan** | lab: exact targets | " in (tmp_path / "a" / "report.md").read_text()
    other = evaluate.evaluate(tiny["legan"], judges=judges, output_dir=str(tmp_path / "b"), seed=1, **SMALL)
    assert _values(other) != _values(first)
    same = evaluate.evaluate(tiny["legan"], judges=judges, output_dir=str(tmp_path / "c"), seed=0, **SMALL)
    assert _values(same) == _values(first)


def test_without_judges_or_held_out_faces_every_figure_says_why(tiny, tmp_path):
    no_holdout = tmp_path / "no-holdout"
    shutil.copytree(tiny["stargan"], no_holdout)
    flags_text = (no_holdout / "flags.txt").read_text().replace("--holdout_fraction=0.34", "--holdout_fraction=0.0")
    (no_holdout / "flags.txt").write_text(flags_text)
    content = evaluate.evaluate(str(no_holdout), judges=Judges(), output_dir=str(tmp_path / "out"), **SMALL)
    model = content["models"][0]
    assert "held out none; give --real=" in model["sources"]["real"]["reason"]
    lab = model["sources"]["lab"]
    assert lab["translation"] is None and "no --classifier given" in lab["translation_reason"]
    reasons = {key: result["reason"] for key, result in lab["metrics"].items() if not result["available"]}
    assert set(reasons) == {"fid", "kid", "lpips", "match_score", "quality_score", "generation_rate"}
    assert "no quality model Q given" in reasons["quality_score"]
    assert lab["metrics"]["ssim"]["available"]  # needs no judge
    text = (tmp_path / "out" / "report.md").read_text()
    assert "real faces: no real faces: the run trained on all of" in text
    # --real: the same faces given as a manifest instead of the run's split.
    manifest = os.path.join(tiny["root"], "lab", "multipie", "manifest.csv")
    given = evaluate.evaluate(str(no_holdout), judges=Judges(), real=manifest, sources=["real"],
                              output_dir=str(tmp_path / "given"), **{**SMALL, "num_real": 10})
    real = given["models"][0]["sources"]["real"]
    assert real["available"] and real["description"]["num_faces"] == 10
    assert real["description"]["available_faces"] == 72 and real["metrics"]["reconstruction/ssim"]["available"]


def test_real_targets_keep_the_class_mix_and_move_fixed_points():
    labels = {"expression": np.repeat(np.arange(3), 4), "lighting": np.tile(np.arange(2), 6)}
    targets, unchanged = real_pass.draw_real_targets(labels, ("expression", "lighting"),
                                                    {"expression": 3, "lighting": 2}, 12, seed=0)
    for name in labels:
        assert sorted(targets[name]) == sorted(labels[name])  # the same class mix as the reals
    same = (targets["expression"] == labels["expression"]) & (targets["lighting"] == labels["lighting"])
    assert unchanged == 0 and not same.any()
    again, _ = real_pass.draw_real_targets(labels, ("expression", "lighting"), {"expression": 3, "lighting": 2}, 12, 0)
    assert all(np.array_equal(again[name], targets[name]) for name in labels)
    # An attribute the data do not label is drawn uniformly; a class of more than half the faces keeps some.
    targets, unchanged = real_pass.draw_real_targets({"expression": np.array([0, 0, 0, 1])}, ("expression", "lighting"),
                                                    {"expression": 2, "lighting": 4}, 4, seed=0)
    assert unchanged == 2 and set(targets["lighting"]) <= set(range(4))


def test_used_in_training_by_path_or_content_lambda_and_missing_files(tiny, tmp_path):
    run = resolve_run(tiny["legan"])
    copy = tmp_path / "q-copy.keras"
    shutil.copy(tiny["quality"], copy)
    judges = Judges()
    judges.quality = Judge("quality", "--quality_model", str(copy))
    judges.identity = Judge("identity", "--identity_model", tiny["classifier"])  # another file
    used = judges_used_in_training(run, judges)
    assert used["quality"]["used"] is True and "same file content" in used["quality"]["why"]
    assert used["identity"]["used"] is False and "another file" in used["identity"]["why"]
    run.flag_lines["legan_lambda_qual"] = "0.0"
    assert judges_used_in_training(run, judges)["quality"]["used"] is False
    run.flag_lines.update(legan_lambda_qual="1.0", legan_quality_model="runs/gone/quality_model.keras")
    assert judges_used_in_training(run, judges)["quality"]["used"] is None
    # The depth-guided recipe's judge is the depth network of its --stargan_depth_pretrained_run.
    pretrained = tmp_path / "depth-pretrain"
    pretrained.mkdir()
    shutil.copy(tiny["quality"], pretrained / "depth_generator.keras")  # any file: compared by content
    run.flag_lines.update(task="stargan_depth", stargan_depth_pretrained_run=str(pretrained),
                          stargan_depth_depth_weight="0.3")
    run.settings["task"] = "stargan_depth"
    judges.depth = Judge("depth", "--depth_judge", str(pretrained / "depth_generator.keras"))
    assert judges_used_in_training(run, judges)["depth"]["used"] is True


def test_a_depth_guided_run_on_the_labs_rgbd_faces(tmp_path):
    write_face_lab(tmp_path / "lab", image_size=32, num_identities=3, num_lightings=4, parts=("rgbd",), progress=False)
    names = "anger,contempt,disgust,fear,happy,neutral,sadness,surprise"
    run = tmp_path / "run"
    run.mkdir()
    x = np.zeros((1, 32, 32, 3), np.float32)
    _save(StarGANGenerator(image_size=32, num_labels=8, base_filters=4, num_residual_blocks=1),
          run / "generator.keras", (x, np.zeros((1, 8), np.float32)))
    (run / "flags.txt").write_text(
        f"--task=stargan_depth\n--data_format=rgbd\n--data_path={tmp_path / 'lab' / 'rgbd' / 'manifest.csv'}\n"
        f"--image_size=32\n--expression_names={names}\n--holdout_fraction=0.34\n--split_seed=0\n")
    classifier = _save(AttributeClassifier(image_size=32, head_classes={"expression": 8}, base_filters=4,
                                           num_downsamples=2), tmp_path / "classifier.keras", x)
    content = evaluate.evaluate(str(run), judges=load_judges(classifier=classifier),
                                output_dir=str(tmp_path / "out"), **SMALL)
    model = content["models"][0]
    assert model["task"] == "stargan_depth" and model["attributes"] == ["expression"]
    lab, real = model["sources"]["lab"], model["sources"]["real"]
    assert lab["description"]["lab"]["part"] == "rgbd" and lab["translation"]["kind"] == "expression_edit"
    assert real["description"]["num_faces"] == 8  # one held-out identity, 8 expressions
    rate = real["metrics"]["generation_rate"]
    assert rate["available"] and set(rate["protocol"]["class_names"]) == {"expression"}
    assert "| expression rate ↑ | FID ↓ | KID ↓ |" in report.bodur_table(content)


def test_real_faces_fid_against_another_stored_split_beside_the_floor(tmp_path):
    """Shards with train, test and validation (FER2013's layout; the run trained with holdout_fraction 0): the
    stored test split is edited, and FID/KID compare the edits with the validation faces; the real-faces row
    holds the floor, the test faces unedited against the same, equal to that FID computed directly."""
    from legan_tf.data import DataConfig, open_source, tfrecord
    from legan_tf.errors import ConfigError
    from legan_tf.evaluation.metrics.fid import FID

    names, size = ("angry", "happy", "sad"), 16
    rng = np.random.default_rng(0)
    for prefix, count in (("Training", 2), ("PrivateTest", 3), ("PublicTest", 4)):
        for name in names:
            (tmp_path / "raw" / name).mkdir(parents=True, exist_ok=True)
            for index in range(count):
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
                    tmp_path / "raw" / name / f"{prefix}_{index}.png")
    source = open_source(DataConfig("folder", str(tmp_path / "raw"), image_size=size, expression_names=names,
                                    lighting_names=(), split_pattern=r"(?P<train>Training_)|(?P<test>PrivateTest_)|"
                                                                     r"(?P<validation>PublicTest_)"))
    shards = str(tmp_path / "shards")
    tfrecord.prepare_output_dir(shards, False)
    tfrecord.write_tfrecords(source, shards, 1, 0.0, 0)
    run = tmp_path / "run"
    run.mkdir()
    _save(StarGANGenerator(image_size=size, num_labels=3, base_filters=4, num_residual_blocks=1),
          run / "generator.keras", (np.zeros((1, size, size, 3), np.float32), np.zeros((1, 3), np.float32)))
    (run / "flags.txt").write_text(f"--task=stargan\n--data_format=tfrecord\n--data_path={shards}\n"
                                   f"--image_size={size}\n--expression_names={','.join(names)}\n--holdout_fraction=0\n")
    judges = load_judges(inception_extractor=stand_in_extractor())
    arguments = dict(judges=judges, sources=("real",), num_real=0, sample_rows=2, progress=False)
    result = evaluate.evaluate(str(run), output_dir=str(tmp_path / "auto"), **arguments)
    real = result["models"][0]["sources"]["real"]
    fid, kid = real["metrics"]["fid"], real["metrics"]["kid"]
    assert real["description"]["num_faces"] == 9 and "stored test split" in real["description"]["faces_from"]
    assert fid["protocol"]["num_outputs"] == 9 and fid["protocol"]["num_reals"] == 12
    assert kid["protocol"]["num_reals"] == 12 and "stored validation split" in fid["protocol"]["reference"]
    [baseline] = [entry for entry in result["baselines"] if entry["source"] == "real"]
    floor = baseline["rows"]["real faces"]["fid"]
    edited = real_pass.read_real_faces(source.stored_split("test"), [], 0, 0)[0]
    reference = real_pass.read_real_faces(source.stored_split("validation"), [], 0, 0)[0]
    direct = FID(extractor=stand_in_extractor()).compute(outputs=edited, reals=reference)
    assert floor["values"]["fid"] == pytest.approx(direct.values["fid"], rel=1e-4, abs=1e-6)
    # none: the paired comparison of before (the 9 faces against themselves translated).
    paired = evaluate.evaluate(str(run), output_dir=str(tmp_path / "none"), fid_reference_split="none", **arguments)
    fid = paired["models"][0]["sources"]["real"]["metrics"]["fid"]
    assert fid["protocol"]["num_reals"] == 9 and "copying the input scores 0" in fid["protocol"]["reference"]
    with pytest.raises(ConfigError, match="is the split being edited"):
        evaluate.evaluate(str(run), output_dir=str(tmp_path / "bad"), fid_reference_split="test", **arguments)
