"""Naturalness: Q's scores for any folder of faces (`scoring`), naturalness data made from any photos
(`make_naturalness`), and the browser study in which people rate faces (`rating_study`)."""
