"""How often an expression judge reads the target on faces only moved along the target's mean landmark move,
with no generator: what a smooth move of a photo's own pixels can carry of an expression
(docs/relight_faces.md, "How much of an expression a move of the photo can carry, with no generator").

`template_warp`: mean shapes (generalised Procrustes), the move, the dense field and the resampling;
`run.py`: the study on two manifests and a judge."""
