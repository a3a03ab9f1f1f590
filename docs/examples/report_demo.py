"""Write the model report for BiasedMF on MovieLens small.

Run: python docs/examples/report_demo.py [OUT_DIR]   (default: report/)
Needs matplotlib: pip install 'factorkit[plot]'.
"""

import sys
import time

import factorkit as fk
from factorkit.report import write_report


def main(out_dir: str = "report") -> None:
    data = fk.datasets.load_movielens_small()
    train, test = fk.split.random(data, test_size=0.2, random_state=0)
    t0 = time.perf_counter()
    # validation=test records a held-out RMSE per epoch for the learning curves
    model = fk.BiasedMF(random_state=0).fit(train, validation=test)
    cv = fk.cross_validate(fk.BiasedMF(random_state=0), train, cv=3, metrics=["rmse", "mae"])
    path = write_report(
        out_dir,
        model=model,
        train=train,
        test=test,
        title="BiasedMF on MovieLens latest-small",
        cv_result=cv,
        factors=[5, 10, 20, 50, 100, 200],
        data_name="MovieLens latest-small (shipped)",
        split="fk.split.random, test_size 0.2, seed 0; the test set is also the validation "
        "data of the learning curves; cross-validation: 3 folds of train",
    )
    print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main(*sys.argv[1:2])
