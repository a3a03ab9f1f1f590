"""Time-decay weights for implicit models on MovieLens small (docs/time.md, "Weights for
implicit models").

Ratings >= 4 are the positives. Two protocols, recall@20 / NDCG@20 by ``fk.evaluate``
(training items excluded):

- ``temporal``: one global cut, the latest 10% of the positives tested
  (``fk.split.temporal(..., drop_unknown=True)``), weights ``fk.time_decay(train, ...)``
  relative to the cut;
- ``leave_last``: every user's latest 10 positives tested (``fk.split.leave_last``), with
  the global ``fk.time_decay`` and with a per-user decay (``now="user"``: age relative to
  the user's own latest interaction).

Run: ``python docs/examples/implicit_time_decay.py`` (about a minute on one core);
``--quick`` fits ImplicitALS only, on the temporal protocol, for the test suite.
"""

from __future__ import annotations

import sys

import numpy as np

import factorkit as fk

quick = "--quick" in sys.argv[1:]


def models() -> list[tuple[str, object]]:
    if quick:
        return [("ImplicitALS", fk.ImplicitALS(epochs=3, random_state=0))]
    return [
        ("ImplicitALS", fk.ImplicitALS(random_state=0)),
        ("BPR", fk.BPR(random_state=0, n_threads=1)),
        ("MostPopular", fk.MostPopular()),
    ]


def report(protocol: str, train, test, weightings) -> None:
    users = len(np.unique(test.user_index))
    print(f"{protocol}: {len(train):,} train, {len(test):,} test positives, {users} test users")
    for label, weights in weightings:
        row = []
        for name, model in models():
            model.fit(train, sample_weight=weights)
            res = fk.evaluate(model, test, metrics=["recall@20", "ndcg@20"], train=train)
            row.append(f"{name} {float(res['recall@20']):.3f} / {float(res['ndcg@20']):.3f}")
        print(f"  {label:<22}" + "   ".join(row), flush=True)


data = fk.datasets.load_movielens_small().to_implicit(min_value=4.0)
half_lives = ["1y"] if quick else ["90d", "1y", "2y"]

train, test = fk.split.temporal(data, test_size=0.1, drop_unknown=True)
report(
    "temporal",
    train,
    test,
    [("no weights", None)]
    + [(f"time_decay {h}", fk.time_decay(train, half_life=h)) for h in half_lives],
)
if not quick:
    train, test = fk.split.leave_last(data, n=10, min_train=5, drop_unknown=True)
    report(
        "leave_last",
        train,
        test,
        [("no weights", None)]
        + [(f"time_decay {h}", fk.time_decay(train, half_life=h)) for h in half_lives]
        + [
            (f"per-user decay {d}d", fk.time_decay(train, half_life=f"{d}d", now="user"))
            for d in (30, 90, 365)
        ],
    )
