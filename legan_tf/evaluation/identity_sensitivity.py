"""What moves an identity embedding: 1 - cos between a lab face and the same face with one thing changed.

A face recogniser used as f in LEGAN's `L_id = 1 - cos(f(I), f(G(I, c)))` should move far when the
person changes and little when only the light or the expression does. Whatever f is sensitive to
besides identity, L_id penalises in a correct edit, so G is pushed to pay it back elsewhere. The
face lab renders the same person under any light and expression, which makes this measurable.
"""

from typing import Callable, Dict, Sequence

import numpy as np

from legan_tf.data.degradations import gaussian_blur
from legan_tf.data.synthetic import FaceLab
from legan_tf.evaluation.translation_metrics import draw_edits, to_model_images

# Each compared face differs from its anchor in exactly one of these.
CHANGES = ("lighting", "expression", "identity")
# And the same render, degraded as a generator's output is: (name, blur sigma, noise std in [-1, 1]).
DEGRADATIONS = (("blur", 0.8, 0.0), ("noise", 0.0, 0.05))


def _other(rng, values: np.ndarray, choices: np.ndarray) -> np.ndarray:
    """For each value, a different one drawn uniformly from `choices`."""
    out = rng.choice(choices, size=len(values))
    clash = out == values
    while clash.any():
        out[clash] = rng.choice(choices, size=int(clash.sum()))
        clash = out == values
    return out


def _one_minus_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pair, L_id's 1 - cos (legan_tf.losses.identity_loss) in float64, so exact cases score exactly 0."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return 1.0 - np.sum(a * b, axis=1)


def attribute_sensitivity(embed: Callable[[np.ndarray], np.ndarray], lab: FaceLab, identities: Sequence[int],
                          image_size: int, num_pairs: int = 400, seed: int = 0) -> Dict[str, float]:
    """Mean and std of 1 - cos(f(a), f(b)) over `num_pairs` anchors a, with b the same render but
    another light, another expression or another identity (of `identities`), or the same render
    blurred or noised (DEGRADATIONS).

    `embed` maps (N, image_size, image_size, 3) faces in [-1, 1] to (N, D) embeddings. Also returns
    `lighting_over_expression`: how many times more a change of light moves f than one of expression.
    """
    identities = np.asarray(identities)
    if len(identities) < 2 or num_pairs < 1:
        raise ValueError(f"need at least two identities and one pair, got {len(identities)} and {num_pairs}")
    rng = np.random.default_rng(seed)
    anchor = {"identity": rng.choice(identities, size=num_pairs),
              "expression": rng.integers(0, lab.num_expressions, size=num_pairs),
              "lighting": rng.integers(0, lab.num_lightings, size=num_pairs)}
    choices = {"identity": identities, "expression": np.arange(lab.num_expressions),
               "lighting": np.arange(lab.num_lightings)}

    def images_of(labels):
        return to_model_images(lab.render(labels["identity"], labels["expression"], labels["lighting"])["rgb"],
                               image_size)

    def embedding(images):
        return np.asarray(embed(images), np.float64)

    anchor_images = images_of(anchor)
    anchor_embedding = embedding(anchor_images)
    result = {"num_pairs": float(num_pairs)}
    for change in CHANGES:
        other = dict(anchor, **{change: _other(rng, anchor[change], choices[change])})
        distance = _one_minus_cosine(anchor_embedding, embedding(images_of(other)))
        result[f"other_{change}_mean"] = float(distance.mean())
        result[f"other_{change}_std"] = float(distance.std())
    for name, sigma, noise in DEGRADATIONS:
        degraded = gaussian_blur(anchor_images, np.full(num_pairs, sigma, np.float32)).numpy()
        degraded = np.clip(degraded + noise * rng.standard_normal(degraded.shape), -1.0, 1.0).astype(np.float32)
        distance = _one_minus_cosine(anchor_embedding, embedding(degraded))
        result[f"{name}_mean"] = float(distance.mean())
        result[f"{name}_std"] = float(distance.std())
    result["lighting_over_expression"] = result["other_lighting_mean"] / max(result["other_expression_mean"], 1e-12)
    return result


def translation_identity_loss(embed: Callable[[np.ndarray], np.ndarray], translate, lab: FaceLab,
                              identities: Sequence[int], image_size: int, num_faces: int = 200,
                              seed: int = 0) -> Dict[str, float]:
    """L_id as a generator meets it: mean 1 - cos(f(I), f(G(I, c))) over random joint edits of lab
    faces, beside 1 - cos(f(I), f(exact render of c)), what a perfect translation would score.

    `translate(images, {"expression": ids, "lighting": ids})` returns the translations. A large gap
    means f reads G's output as someone else, and L_id pushes G toward whatever closes it.
    """
    identity, source, new = draw_edits(lab, identities, num_faces, seed)

    def render(labels):
        return to_model_images(lab.render(identity, labels["expression"], labels["lighting"])["rgb"], image_size)

    images = render(source)
    anchor = np.asarray(embed(images), np.float64)
    translated = _one_minus_cosine(anchor, np.asarray(embed(translate(images, new)), np.float64))
    exact = _one_minus_cosine(anchor, np.asarray(embed(render(new)), np.float64))
    return {"num_faces": float(num_faces), "translation_mean": float(translated.mean()),
            "exact_target_mean": float(exact.mean())}


def format_sensitivity(result: Dict[str, float]) -> str:
    lines = ["| b, compared with a | mean 1 - cos | std |", "|---|---:|---:|"]
    captions = {"lighting": "same face, other light", "expression": "same face, other expression",
                "identity": "another identity"}
    for change in CHANGES:
        lines.append(f"| {captions[change]} | {result[f'other_{change}_mean']:.4f} | "
                     f"{result[f'other_{change}_std']:.4f} |")
    for name, sigma, noise in DEGRADATIONS:
        caption = f"same render, blurred (sigma {sigma:g} px)" if sigma else f"same render, noise (std {noise:g})"
        lines.append(f"| {caption} | {result[f'{name}_mean']:.4f} | {result[f'{name}_std']:.4f} |")
    lines.append(f"light moves f {result['lighting_over_expression']:.1f}x as much as expression "
                 f"({int(result['num_pairs'])} pairs)")
    return "\n".join(lines)
