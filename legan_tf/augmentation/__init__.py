"""Balancing a dataset with a generator: edited copies of its faces for its rare classes, filtered by Q
(`augment`). The experiment that measures what they buy a classifier is a study
(studies/augmentation_experiment/)."""
