"""What a classifier's input gradient draws on faces, before it becomes a generator's frozen reward: each face
pushed toward each target class within an L2 ball (docs/stargan.md, "Beyond the reference: what the
generator's classification reward reads").

`classifier_gradients`: the faces, the steering and the mosaic; `run.py`: the study on a folder of faces and one
or more classifiers."""
