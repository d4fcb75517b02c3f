"""Balancing a dataset with a generator: edited copies of its faces for its rare classes, filtered by Q
(`augment`), and the experiment that measures what they buy a classifier (`experiment`)."""
