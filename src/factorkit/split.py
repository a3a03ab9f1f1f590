"""Train/test splits of Interactions: ``fk.split.random(data, test_size=0.2)`` and friends.

- :func:`random`: a uniformly random subset of the interactions.
- :func:`per_user`: a random fraction (or count) of each user's interactions.
- :func:`temporal`: one global time cut; test is at or after everything in train.
- :func:`leave_last`: each user's latest ``n`` interactions.
- :func:`kfold`: interaction-level k-fold cross-validation.
- :func:`user_kfold`: k-fold cross-validation holding out whole users.

All return Interactions sharing the input's id maps; test rows with users or items
unseen in train are kept unless ``drop_unknown=True``. See :mod:`factorkit.data.splits`.
"""

from factorkit.data.splits import kfold, leave_last, per_user, random, temporal, user_kfold

__all__ = ["kfold", "leave_last", "per_user", "random", "temporal", "user_kfold"]
