#!/usr/bin/env python
"""How sharp an edited photo's face stays: mean |Laplacian| of the face, edited against unedited.

    .venv/bin/python studies/photo_sharpness/run.py --model=runs/<run> [--model=runs/<other run>] --grey_model

For each model and each photo that ships in a package (the astronaut from scikit-image, Grace Hopper
from matplotlib), every face is edited to every expression of the model as `scripts/edit_photo.py`
does (its default --paste), and the mean |Laplacian| (4 neighbours, grey levels 0-255) is measured
over the face's feathered region of the photo, and, for a generator with an attention output, apart
over the pixels where the generator's mask, taken back to the photo, is below --mask_off (where the
photo's own pixels should be kept) and over the rest. A ratio of 1.00 outside the mask means the
edit kept the photo's own detail there; a ratio below 1 means the edit softened the face.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402


def laplacian(image):
    grey = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.abs(ndimage.laplace(grey, mode="mirror"))


def measure(model, photos, grey_model, mask_off):
    from legan_tf.photos import edit_photo, faces as face_tools

    editor = edit_photo.load_editor(model)
    finder = face_tools.FaceFinder()
    feather = face_tools.feather_mask(editor.image_size)
    rows = []
    for name, rgb in photos.items():
        photo = face_tools.Photo(rgb, None, "RGB", None, None)
        targets = edit_photo.resolve_targets(editor.label_names, None, None, all_expressions=True)
        edited = edit_photo.edit_faces(editor, photo, finder, targets, grey_model=grey_model, name=name)
        before = laplacian(rgb)
        for index, result in enumerate(edited.results):
            after = laplacian(result)
            for face, alignment in enumerate(edited.alignments):
                region = face_tools.mask_in_photo(rgb.shape, alignment, feather) > 0.5
                row = {"model": os.path.basename(os.path.normpath(model)), "photo": name,
                       "target": targets[index]["expression"], "face": face,
                       "face_ratio": after[region].mean() / before[region].mean()}
                if edited.masks is not None:
                    crop_mask = feather * edited.masks[index * len(edited.faces) + face]
                    mask = face_tools.mask_in_photo(rgb.shape, alignment, crop_mask)
                    off = region & (mask < mask_off)
                    row.update(off_share=off.sum() / region.sum(),
                               off_ratio=after[off].mean() / before[off].mean() if off.any() else float("nan"),
                               on_ratio=after[region & ~off].mean() / before[region & ~off].mean()
                               if (region & ~off).any() else float("nan"),
                               mean_mask=float(mask[region].mean()))
                rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="A run directory or export (repeatable).")
    parser.add_argument("--grey_model", action="store_true", help="The models were trained on grey faces.")
    parser.add_argument("--mask_off", type=float, default=0.05,
                        help="Photo pixels whose mask weight is below this count as outside the mask.")
    args = parser.parse_args()
    from legan_tf.photos import samples

    photos = {"astronaut": samples.astronaut(), "grace_hopper": samples.grace_hopper()}
    print("| model | photo | face |Laplacian| edited / unedited (median over targets) | mask off: share of face "
          "| off: edited / unedited | on: edited / unedited | mean mask |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for model in args.model:
        rows = measure(model, photos, args.grey_model, args.mask_off)
        for photo in photos:
            mine = [row for row in rows if row["photo"] == photo]
            if not mine:
                continue

            def median(key):
                values = [row[key] for row in mine if key in row]
                return f"{np.nanmedian(values):.3f}" if values else "-"

            print(f"| {mine[0]['model']} | {photo} | {median('face_ratio')} | {median('off_share')} | "
                  f"{median('off_ratio')} | {median('on_ratio')} | {median('mean_mask')} |")


if __name__ == "__main__":
    main()
