"""FaceLab: labelled faces with exact ground truth, a pure function of (identity, expression, lighting)."""

from __future__ import annotations

import numpy as np

from legan_tf.data.synthetic.expressions import EXPRESSION_SETS, apply_expression, expression_wrinkles
from legan_tf.data.synthetic.geometry import draw_face, make_grid, sample_identity, stack_layouts
from legan_tf.data.synthetic.lighting import effective_lights, lambertian, light_directions

MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 256
# Heights map to depth as DEPTH_OFFSET + DEPTH_SCALE * height, so the face's rim is not at 0
# (0 means background) and the nose tip stays below 1.
DEPTH_OFFSET = 0.2
DEPTH_SCALE = 0.8
MIN_FACE_DEPTH = 0.05
# Samples are rendered in chunks of about this many pixels to bound the memory of the temporaries.
CHUNK_PIXELS = 1 << 20


class FaceLab:
    """Synthetic faces with known identity, expression and lighting.

    Args:
      image_size: side of the square images, 32..256.
      expression_set: a key of EXPRESSION_SETS ("multipie" or "affectnet").
      num_lightings: number of lighting conditions (>= 2); 0 is "no flash".
      seed: seeds every identity's generator; identity i of seed s always looks the same.
      ambient: the share of light that reaches every surface regardless of its orientation.
    """

    def __init__(self, image_size: int = 64, expression_set: str = "multipie",
                 num_lightings: int = 20, seed: int = 0, ambient: float = 0.25):
        if (isinstance(image_size, bool) or int(image_size) != image_size
                or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE):
            raise ValueError(f"image_size must be an integer in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}],"
                             f" got {image_size!r}")
        if expression_set not in EXPRESSION_SETS:
            raise ValueError(f"expression_set must be one of {sorted(EXPRESSION_SETS)}, "
                             f"got {expression_set!r}")
        if not 0.0 <= ambient < 1.0:
            raise ValueError(f"ambient must be in [0, 1), got {ambient!r}")
        if int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.image_size = int(image_size)
        self.expression_set = expression_set
        self.seed = int(seed)
        self.ambient = float(ambient)
        self.expression_names = EXPRESSION_SETS[expression_set]
        self.light_directions = light_directions(num_lightings)
        self.lighting_names = tuple(f"{index:02d}" for index in range(len(self.light_directions)))
        self._grid = make_grid(self.image_size)
        self._layouts: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    @property
    def num_expressions(self) -> int:
        return len(self.expression_names)

    @property
    def num_lightings(self) -> int:
        return len(self.lighting_names)

    def render(self, identity, expression, lighting) -> dict[str, np.ndarray]:
        """Renders a batch; ints or equal-length 1-D int arrays, broadcast against each other.

        Returns rgb [B,S,S,3] in [0,1] on black, depth [B,S,S] in [0,1] (nearer is brighter, 0 on
        background), normals [B,S,S,3] (zeros on background), mask [B,S,S] in {0,1}, and the
        int32 labels identity, expression and lighting [B].
        """
        identity, expression, lighting = self._labels(identity, expression, lighting)
        step = max(1, CHUNK_PIXELS // self.image_size**2)
        chunks = [self._render_chunk(identity[i:i + step], expression[i:i + step], lighting[i:i + step])
                  for i in range(0, len(identity), step)]
        out = {key: np.concatenate([chunk[key] for chunk in chunks]) for key in chunks[0]}
        out.update(identity=identity, expression=expression, lighting=lighting)
        return out

    def render_one(self, identity: int, expression: int, lighting: int) -> dict[str, np.ndarray]:
        """One sample without the batch dimension: the exact paired ground truth of a translation."""
        return {key: value[0] for key, value in self.render(identity, expression, lighting).items()}

    def render_grid(self, identities, expressions=None, lightings=None) -> dict[str, np.ndarray]:
        """Every (identity, expression, lighting) combination, identity-major then expression.

        `expressions` and `lightings` default to all of them.
        """
        expressions = range(self.num_expressions) if expressions is None else expressions
        lightings = range(self.num_lightings) if lightings is None else lightings
        combos = np.array(np.meshgrid(np.atleast_1d(identities), np.atleast_1d(expressions),
                                      np.atleast_1d(lightings), indexing="ij")).reshape(3, -1)
        return self.render(*combos)

    def _labels(self, identity, expression, lighting):
        arrays = [np.atleast_1d(np.asarray(value)) for value in (identity, expression, lighting)]
        for name, array in zip(("identity", "expression", "lighting"), arrays):
            if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
                raise ValueError(f"{name} must be an int or a 1-D int array, got {array!r}")
        try:
            identity, expression, lighting = np.broadcast_arrays(*arrays)
        except ValueError:
            raise ValueError("identity, expression and lighting must have equal lengths "
                             f"(or be single ints), got {[len(a) for a in arrays]}") from None
        if identity.size == 0:
            raise ValueError("nothing to render: the label arrays are empty")
        for name, array, limit in (("expression", expression, self.num_expressions),
                                   ("lighting", lighting, self.num_lightings)):
            if array.min() < 0 or array.max() >= limit:
                raise ValueError(f"{name} ids must be in [0, {limit}), got {np.unique(array)}")
        if identity.min() < 0:
            raise ValueError(f"identity ids must be >= 0, got {np.unique(identity)}")
        return identity.astype(np.int32), expression.astype(np.int32), lighting.astype(np.int32)

    def _layout(self, identity: int, expression: int) -> dict[str, np.ndarray]:
        key = (identity, expression)
        if key not in self._layouts:
            neutral = sample_identity(self.seed, identity)
            self._layouts[key] = apply_expression(neutral, self.expression_names[expression])
        return self._layouts[key]

    def _render_chunk(self, identity, expression, lighting):
        grid = self._grid
        layout = stack_layouts([self._layout(int(i), int(e)) for i, e in zip(identity, expression)])
        height, albedo, mask = draw_face(grid, layout)
        wrinkle_height, crease = expression_wrinkles(grid, layout)
        height += wrinkle_height
        albedo *= (1.0 - crease)[..., None]

        # Normals of the surface z = height(x, y): (-dz/dx, -dz/dy, 1), normalised. Rows run
        # downward while y runs up, hence the sign of the row derivative.
        dz_drow, dz_dcol = np.gradient(height, grid.pixel, axis=(1, 2))
        normals = np.stack([-dz_dcol, dz_drow, np.ones_like(height)], axis=-1)
        normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
        normals *= mask[..., None]

        lights = effective_lights(self.light_directions[lighting])
        shading = lambertian(normals, lights, self.ambient)
        rgb = np.clip(albedo * shading[..., None], 0.0, 1.0) * mask[..., None]
        depth = np.clip(DEPTH_OFFSET + DEPTH_SCALE * height, MIN_FACE_DEPTH, 1.0) * mask
        return {
            "rgb": rgb.astype(np.float32),
            "depth": depth.astype(np.float32),
            "normals": normals.astype(np.float32),
            "mask": mask.astype(np.float32),
        }
