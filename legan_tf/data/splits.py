"""Held-out splits by group (subject or source), optionally stratified, deterministic in the seed."""

from __future__ import annotations

import collections
from typing import List, Optional, Sequence, Tuple

import numpy as np

from legan_tf.data.errors import DataError


def split_by_group(
    groups: Sequence[str],
    holdout_fraction: float,
    seed: int,
    strata: Optional[Sequence[str]] = None,
) -> Tuple[List[int], List[int]]:
    """Returns (train indices, test indices); every group lies wholly on one side.

    With strata, each group belongs to the stratum most of its examples have, and each stratum
    gives about holdout_fraction of its examples to the test side, so both sides see every
    generator. Groups are ordered by name before the seeded shuffle, so the split depends only on
    the data and the seed, not on row order. A holdout_fraction of 0 holds nothing out (all examples
    train), which is what --holdout_fraction's default asks for.
    """
    if holdout_fraction == 0.0:
        return list(range(len(groups))), []
    if not 0.0 < holdout_fraction < 1.0:
        raise DataError(f"holdout_fraction must be in [0, 1) to split, got {holdout_fraction}")
    members = collections.defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    if len(members) < 2:
        raise DataError(f"cannot hold out a test split: all {len(groups)} examples share one group")

    group_stratum = {}
    for group, indices in members.items():
        votes = collections.Counter(strata[i] for i in indices) if strata is not None else {"": 1}
        # Most common stratum; ties go to the first name so the choice is deterministic.
        group_stratum[group] = min(votes, key=lambda name: (-votes[name], name))

    rng = np.random.default_rng(seed)
    test_groups = set()
    for stratum in sorted(set(group_stratum.values())):
        stratum_groups = sorted(g for g, s in group_stratum.items() if s == stratum)
        order = rng.permutation(len(stratum_groups))
        target = holdout_fraction * sum(len(members[g]) for g in stratum_groups)
        taken = 0
        for position in order:
            group = stratum_groups[position]
            # Take a group while at least half of it fits under the target.
            if taken + len(members[group]) / 2 <= target:
                test_groups.add(group)
                taken += len(members[group])
    if not test_groups:
        # Tiny data: every group is larger than twice its share; hold out the smallest one.
        smallest = min(sorted(members), key=lambda g: len(members[g]))
        test_groups.add(smallest)
    if len(test_groups) == len(members):
        raise DataError("holdout_fraction leaves no group for training")
    train = sorted(i for g, ix in members.items() if g not in test_groups for i in ix)
    test = sorted(i for g, ix in members.items() if g in test_groups for i in ix)
    return train, test
