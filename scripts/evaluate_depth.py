#!/usr/bin/env python
"""The depth network's learning check: its held-out depth error against the training set's mean depth map.

  python scripts/evaluate_depth.py --run_dir=runs/depth-pretrain-lab-20250101-120000

Reads the run's flags.txt to reopen its data and its held-out split (identities it never trained on),
averages the training split's depth maps into the mean map, and measures the mean absolute depth
error of <run_dir>/depth_generator.keras and of the mean map on the held-out faces (normals: the mean
angle on the face). The check: the network's error at most half the mean map's. Writes
<run_dir>/evaluation/depth_metrics.json and depth_samples.png (input, true, predicted, mean map).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.evaluation import depth_metrics  # noqa: E402

flags.DEFINE_string("run_dir", None, "A --task=depth_pretrain run directory (flags.txt, depth_generator.keras).")
flags.DEFINE_string("depth_generator", None, "A depth_generator.keras to evaluate instead of the run's own.")
flags.DEFINE_integer("batch_size", 64, "Faces per forward pass.", lower_bound=1)
flags.DEFINE_integer("sample_rows", 8, "Held-out faces shown in depth_samples.png.", lower_bound=0)
flags.DEFINE_string("output_dir", None, "Where to write the results. Default: <run_dir>/evaluation.")
flags.mark_flag_as_required("run_dir")

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    report = run_main(depth_metrics.evaluate_depth_run, FLAGS.run_dir, FLAGS.depth_generator, FLAGS.batch_size,
                      FLAGS.output_dir, FLAGS.sample_rows)
    metrics = report["metrics"]
    unit = "depth" if metrics["geometry"] == "depth" else "angle_deg"
    print(f"{report['held_out_faces']} held-out faces ({report['train_faces']} in training), geometry "
          f"{metrics['geometry']}")
    print(f"{'':26}{'G_depth':>10}{'mean map':>10}{'ratio':>8}")
    for suffix, where in (("", "all pixels"), ("_face", "face pixels")):
        label = f"{unit} error, {where}"
        print(f"{label:26}{metrics[f'{unit}_error{suffix}']:>10.4f}"
              f"{metrics[f'{unit}_error{suffix}_mean_map']:>10.4f}{metrics[f'ratio{suffix}']:>8.3f}")
    print(f"learning check ({metrics['checked']} <= {metrics['target_ratio']}): "
          f"{'PASSED' if metrics['passed'] else 'NOT PASSED'}")
    print(f"written to {report['output_dir']}: {depth_metrics.METRICS_FILE}, {depth_metrics.SAMPLES_FILE}")


if __name__ == "__main__":
    app.run(main)
