"""Does balancing a dataset with a generator (and filtering its outputs by Q) help a classifier trained on it?
A class-imbalanced subset per seed, a classifier trained on it as it is, oversampled, augmented by
`legan_tf.augmentation.augment` and augmented with Q's filter, each judged per class on held-out subjects
(docs/evaluation.md, "The experiment").

`experiment`: the steps of one seed and the summary; `run.py`: the whole comparison, resumable."""
