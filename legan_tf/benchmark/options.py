"""The benchmark's settings, declared once: scripts/benchmark.py's flags derive from `BenchmarkOptions`."""

from __future__ import annotations

import dataclasses
from typing import Optional

from legan_tf.hparams import hparam
from legan_tf.precision import POLICIES

# --suite: sets of benchmarks run instead of --benchmarks.
SUITES = {"train": ("train",), "infer": ("infer",), "all": ("train", "infer", "input_tf")}
WIDTH_CHOICES = ("paper", "reduced")


@dataclasses.dataclass(frozen=True)
class BenchmarkOptions:
    suite: Optional[str] = hparam(
        None, "A set of benchmarks to run instead of --benchmarks: train, infer, or all (train, infer, input_tf).",
        choices=tuple(SUITES))
    benchmarks: tuple[str, ...] = hparam(
        ("lab", "classifier"), "Which benchmarks to run when no --suite is given: train, infer, input_tf, lab, "
        "classifier, serving, gan, input, app.")
    repeats: int = hparam(7, "Timed repetitions per setting; the median is reported.", lower_bound=1)
    suite_sizes: tuple[str, ...] = hparam(("64", "128"), "Image sizes of the train and infer benchmarks.")
    suite_widths: str = hparam(
        "paper", "Network widths of the train and infer benchmarks: paper (each recipe's paper or reference widths: "
        "G and D 64 filters, 6 residual blocks, 6 D downsamplings; Q 64 filters, 6 convs, 256 units; LightCNN-29 v2 "
        "at 128 px) or reduced (8 filters, 1 residual block, 3 downsamplings, a narrow LightCNN at 32 px: for smoke "
        "tests, not comparisons).", choices=WIDTH_CHOICES)
    lab_sizes: tuple[str, ...] = hparam(("32", "64", "128", "256"), "Image sizes of the lab benchmark.")
    classifier_size: int = hparam(64, "Image size of the classifier benchmark.")
    classifier_batch: int = hparam(64, "Batch size of the classifier benchmark.")
    serving_size: int = hparam(128, "Face size of the serving benchmark (LEGAN paper: 128).")
    serving_filters: int = hparam(64, "Base filters of each hourglass in the serving benchmark (paper: 64).")
    app_model: str = hparam("pretrained:stargan-fer2013-64", "The generator of the app benchmark (any --model of "
                            "scripts/app.py).")
    app_requests: int = hparam(20, "Uploads timed by the app benchmark.", lower_bound=1)
    app_baseline: str = hparam(
        "", "Another checkout of legan-tf (an earlier commit, say) to time beside this one: the app benchmark then "
        "serves --app_model from each checkout's scripts/app.py in a process of its own, alternates the uploads and "
        "gives both checkouts' figures and their ratio.")
    serving_requests: int = hparam(30, "Single-face requests timed per path for the latency percentiles.")
    gan_size: int = hparam(64, "Image size of the gan benchmark.")
    gan_batch: int = hparam(16, "Batch size of the gan and train benchmarks (StarGAN reference: 16).")
    gan_widths: tuple[str, ...] = hparam(
        ("32:3:5", "64:6:6"), "G/D base filters:G residual blocks:D downsamplings of the gan benchmark, one row each "
        "(64:6:6 is StarGAN's reference width).")
    gan_generators: tuple[str, ...] = hparam(
        ("transpose:image",), "Generator variants of the gan benchmark, upsampling:output each (train.py's "
        "--stargan_g_upsampling and --stargan_g_output), one row per width and variant, timed in one run.")
    mixed_precision: str = hparam(
        "float32", "gan, train and infer benchmarks: the networks' compute dtype (train.py's --mixed_precision).",
        choices=POLICIES)
    gan_jit_compile: bool = hparam(
        False, "gan and train benchmarks under TensorFlow: compile each update's loss and gradients with XLA, as "
        "train.py --jit_compile does.")
    input_size: int = hparam(128, "Image size of the input and input_tf benchmarks.")
    input_batch: int = hparam(64, "Batch size of the input and input_tf benchmarks.")
    input_workers: int = hparam(0, "Decoding threads of the input benchmark (0: one per core).")
    input_processes: int = hparam(0, "Worker processes of the input benchmark instead of threads (0: threads).")
    input_source_size: int = hparam(
        0, "Size of the stored faces of the input and input_tf benchmarks (0: --input_size, no resampling; 48: "
        "FER2013's faces, upscaled).")

    @property
    def names(self) -> tuple[str, ...]:
        """The benchmarks to run: --suite's, else --benchmarks."""
        return SUITES[self.suite] if self.suite else tuple(self.benchmarks)

    @property
    def precision_label(self) -> str:
        """", mixed_bfloat16" (say) in a row's label, "" for float32."""
        return "" if self.mixed_precision == "float32" else f", {self.mixed_precision}"
