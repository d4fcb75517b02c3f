#!/usr/bin/env python
"""Edits the expression (and lighting) of every face in a photo with a trained generator (docs/edit_photo.md).

  python scripts/edit_photo.py --model=runs/stargan-fer2013-20261201-120000 --input=photo.jpg \\
      --expression=happy --output=edited.jpg
  python scripts/edit_photo.py --model=serving/models/legan --input=photo.jpg --expression=smile \\
      --lighting=07 --output=edited.png
  python scripts/edit_photo.py --model=<run> --input=photo.jpg --all_expressions --output=strip.png
  python scripts/edit_photo.py --model=pretrained:legan-fer2013-relit-64 --input=photo.jpg \\
      --lighting=left_60 --expression=happy --output=edited.jpg
  python scripts/edit_photo.py --model=pretrained:legan-fer2013-relit-64 --input=photo.jpg --all_lightings \\
      --all_expressions --output=grid.png

Finds every face (MediaPipe's detectors and face mesh), aligns each to the canonical crop
(legan_tf.photos.faces.FRAMINGS: FER2013's face-tight crop, or CelebA's for a CelebA model; --framing)
at the generator's size, edits it, and pastes
the change back into the full-resolution photo under a feathered mask: pixels away from the faces
are left exactly as they were. The output format follows --output's extension.

Exit status: 0 when at least one face was edited; 1 for a bad flag, model or photo; 3 when the photo
has no face that can be edited (none found, or every one skipped, e.g. under --min_face_size).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

import sys  # noqa: E402

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.photos import edit_photo, faces  # noqa: E402

flags.DEFINE_string(
    "model", None,
    "A model that ships with the package (pretrained:<name>, e.g. pretrained:stargan-fer2013-64; "
    "docs/pretrained.md), a training run directory (holds generator.keras and labels.json), or a generator exported by "
    "scripts/export.py: a version folder (serving/models/legan/3), the model's folder (its highest "
    "version is used) or a serving root holding one generator.")
flags.DEFINE_string("input", None, "The photo: any format Pillow reads (JPEG, PNG, WebP, TIFF, ...). "
                    "EXIF orientation is honoured; grey, palette, CMYK and 16-bit files are converted to 8-bit RGB.")
flags.DEFINE_string("output", None, "Where to write the edited photo; the extension picks the format "
                    "(.jpg, .png, .webp, .tif, .bmp). Transparency, EXIF and an RGB ICC profile are kept where "
                    "the format holds them.")
flags.DEFINE_string("expression", None, "Target expression, one of the model's names (an unknown name lists them). "
                    "Required when the model edits expression, unless --all_expressions.")
flags.DEFINE_string(
    "lighting", None,
    "Target lighting, one of the model's names. Required when the model edits lighting, unless --all_lightings: "
    "no classifier tells a photo's own light, and a default would relight the face unasked.")
flags.DEFINE_string("attributes", None, "For a model of binary attributes (CelebA's, configs/celeba/): the names "
                    "the faces should have, comma-separated, e.g. Blond_Hair,Young (the others off; empty for none). "
                    "Required for such a model: no classifier tells a photo's own attributes.")
flags.DEFINE_bool("all_expressions", False,
                  "Instead of an edited photo, write to --output a strip: a row per face, the photo's face, "
                  "then the face edited to each expression of the model (the figure of docs/edit_photo.md).")
flags.DEFINE_bool("all_lightings", False,
                  "As --all_expressions, one column per lighting of the model. With --all_expressions too: a grid "
                  "per face, a row per lighting and a column per expression.")
flags.DEFINE_integer("jpeg_quality", 95, "Quality of JPEG and WebP output, 1-100.", lower_bound=1, upper_bound=100)
flags.DEFINE_enum(
    "paste", "auto", edit_photo.PASTE_MODES,
    "auto: for a generator with an attention output (--stargan_g_output=attention), scale up its colour map "
    "and mask and composite them over the photo at the photo's resolution (its own pixels stay where the mask "
    "is off); for any other generator, change. change: add the generator's change (edited crop - crop), "
    "upsampled, to the photo's own pixels. replace: paste the upsampled generated face itself.")
flags.DEFINE_bool(
    "grey_model", False,
    "The model was trained on grey faces (FER2013, CK+48): feed it the grey crop and add only its change "
    "of brightness, so the photo keeps its colours. Implied for a generator with a one-channel colour map "
    "and for a shipped model trained on grey faces.")
flags.DEFINE_enum(
    "framing", "auto", ("auto", *faces.FRAMINGS),
    "The crop each face is aligned to before the model sees it: fer2013 (face-tight, as every expression and "
    "lighting dataset here is aligned), celeba (CelebA's aligned faces, StarGAN's centre square: the whole head "
    "and some background). auto: the model's own (celeba for a model of CelebA's binary attributes).")
flags.DEFINE_enum("detector", "auto", faces.DETECTORS,
                  "MediaPipe face detector: auto (both, merged), short (faces filling much of the photo) or "
                  "full (smaller faces, group photos).")
flags.DEFINE_float(
    "min_face_size", faces.MIN_FACE_SIZE,
    "Faces narrower than this many photo pixels are skipped (reported, not edited): a generated face "
    "pasted up from so few pixels is a blur.", lower_bound=0.0)
flags.DEFINE_integer(
    "detect_max_side", faces.DETECT_MAX_SIDE,
    "Faces are searched on a copy of the photo at most this large; they are edited at full resolution.",
    lower_bound=128)

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    missing = [name for name in ("model", "input", "output") if not FLAGS[name].value]
    if missing:
        raise app.UsageError(f"{', '.join('--' + name for name in missing)} required.")
    try:
        outcome = run_main(
            edit_photo.edit_photo, FLAGS.model, FLAGS.input, FLAGS.output, expression=FLAGS.expression,
            lighting=FLAGS.lighting, all_expressions=FLAGS.all_expressions,
            all_lightings=FLAGS.all_lightings, jpeg_quality=FLAGS.jpeg_quality,
            paste=FLAGS.paste, grey_model=FLAGS.grey_model, detector=FLAGS.detector,
            min_face_size=FLAGS.min_face_size, detect_max_side=FLAGS.detect_max_side, attributes=FLAGS.attributes,
            framing=FLAGS.framing)
    except edit_photo.NoFaceError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(edit_photo.NO_FACE_EXIT)
    print(edit_photo.summary(outcome))


if __name__ == "__main__":
    app.run(main)
