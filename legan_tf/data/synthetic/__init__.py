"""The synthetic face lab: labelled faces with exact geometry, expression and lighting ground truth.

Writing the lab to disk lives in `legan_tf.data.synthetic.writer` (it also draws contact sheets).
"""

from legan_tf.data.synthetic.expressions import EXPRESSION_SETS
from legan_tf.data.synthetic.lighting import light_directions
from legan_tf.data.synthetic.naturalness import ARTIFACT_KINDS, apply_artifact, make_naturalness_set
from legan_tf.data.synthetic.render import FaceLab

__all__ = ["ARTIFACT_KINDS", "EXPRESSION_SETS", "FaceLab", "apply_artifact", "light_directions",
           "make_naturalness_set"]
