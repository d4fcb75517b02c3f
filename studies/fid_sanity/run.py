#!/usr/bin/env python
"""Sanity figures of the FID network on real faces: the floor, and FID rising with damage.

    .venv/bin/python studies/fid_sanity/run.py --faces='data/raw/fer2013/test/*/PrivateTest_*.jpg' \\
        --inception_weights=fid2015 --output=fid_sanity.json

The faces (any image files; grey ones are repeated to RGB) are split in two seeded halves A and B.
Printed: FID and KID between A and B (the floor at this sample size: two samples of one distribution),
then between A and B damaged (Gaussian blur of each --blur sigma, JPEG re-encoding at each
--jpeg quality), which must rise with the damage. Every figure compares equal numbers of faces, so
they compare with each other even below the 2048 features (where FID is biased upward). With
--other='<glob>', also FID between all the faces and those (e.g. FER2013's PublicTest).
"""

import argparse
import glob
import io
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402


def load(paths):
    return [Image.open(path).convert("RGB") for path in paths]


def to_array(images):
    return np.stack([np.asarray(image, np.float32) / 127.5 - 1.0 for image in images])


def blurred(images, sigma):
    return [image.filter(ImageFilter.GaussianBlur(sigma)) for image in images]


def jpeg(images, quality):
    out = []
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        out.append(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", required=True, help="A glob of face images.")
    parser.add_argument("--exclude", default=r"\.jpg\d+\.jpg$",
                        help="Leave out files whose name matches this regular expression (default: FER2013's "
                             "augmented copies, <original>.jpg<k>.jpg).")
    parser.add_argument("--other", default="", help="Optional glob of another set to compare all the faces with.")
    parser.add_argument("--inception_weights", default="fid2015")
    parser.add_argument("--blur", default="1,2", help="Gaussian blur sigmas in pixels (comma-separated).")
    parser.add_argument("--jpeg", default="30,10", help="JPEG qualities (comma-separated).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="", help="Write the figures to this JSON file too.")
    args = parser.parse_args()

    from legan_tf.evaluation.metrics.features import inception_features
    from legan_tf.evaluation.metrics.fid import frechet_distance
    from legan_tf.evaluation.metrics.kid import kernel_inception_distance

    import re

    def matching(pattern):
        return sorted(path for path in glob.glob(pattern) if not (args.exclude and re.search(args.exclude, path)))

    paths = matching(args.faces)
    if len(paths) < 4:
        raise SystemExit(f"--faces={args.faces}: {len(paths)} files; need at least 4")
    order = np.random.default_rng(args.seed).permutation(len(paths))
    half = len(paths) // 2
    a_images, b_images = load([paths[i] for i in order[:half]]), load([paths[i] for i in order[half:2 * half]])
    extractor = inception_features(args.inception_weights)
    started = time.time()

    def features(images):
        return np.asarray(extractor(to_array(images)), np.float64)

    def distance(x, y):
        fid = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
        kid, error = kernel_inception_distance(x, y)
        return {"fid": fid, "kid": kid, "kid_error": error, "n": [len(x), len(y)]}

    a, b = features(a_images), features(b_images)
    rows = {"A vs B (the floor)": distance(a, b)}
    for sigma in [float(value) for value in args.blur.split(",") if value]:
        rows[f"A vs B blurred, sigma {sigma:g} px"] = distance(a, features(blurred(b_images, sigma)))
    for quality in [int(value) for value in args.jpeg.split(",") if value]:
        rows[f"A vs B as JPEG, quality {quality}"] = distance(a, features(jpeg(b_images, quality)))
    if args.other:
        other = matching(args.other)
        rows[f"all {2 * half} faces vs {len(other)} of --other"] = distance(np.concatenate([a, b]),
                                                                           features(load(other)))
    record = {"faces": args.faces, "count": len(paths), "half": half, "seed": args.seed,
              "protocol": extractor.protocol(), "seconds": time.time() - started, "rows": rows}
    print(f"{len(paths)} faces, halves of {half}; {extractor.protocol().get('feature_network')}")
    print("| sets | FID | KID x 1000 |\n|---|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row['fid']:.2f} | {1000 * row['kid']:.2f} +- {1000 * row['kid_error']:.2f} |")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)


if __name__ == "__main__":
    main()
