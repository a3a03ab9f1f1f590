"""The whole factorkit workflow on the shipped MovieLens small data (docs/tutorial.md).

Run: python docs/examples/tutorial.py
"""

import time

import factorkit as fk

# 1. Load -------------------------------------------------------------------------------
data = fk.datasets.load_movielens_small()
print(data)
titles = data.item_metadata["title"]

# 2. Split: hold out a test set that nothing below tunes on -----------------------------
train, test = fk.split.random(data, test_size=0.2, random_state=0)
print(f"train {len(train):,} ratings, test {len(test):,} ratings")

# 3. Fit a baseline and a factor model ---------------------------------------------------
baseline = fk.BaselineOnly().fit(train)
model = fk.BiasedMF(random_state=0).fit(train)
for name, m in (("BaselineOnly", baseline), ("BiasedMF", model)):
    scores = fk.evaluate(m, test, metrics=["rmse", "mae"])
    print(f"{name:<13} RMSE {scores['rmse']:.4f}  MAE {scores['mae']:.4f}")

# 4. Rank selection: how much of the centred rating matrix do a few factors explain? -----
spectrum = fk.evaluation.singular_value_spectrum(train, k=50)
for n in (10, 20, 50):
    print(f"{n:>3} components: {spectrum['cumulative_energy'].iloc[n - 1]:.1%} of the energy")

# 5. Tune: random search with 3-fold CV on the training set only -------------------------
space = fk.evaluation.default_search_space(fk.BiasedMF())  # distributions around defaults
start = time.perf_counter()
search = fk.RandomSearch(fk.BiasedMF(random_state=0), space, n_iter=20, cv=3, metric="rmse")
search.fit(train)
print(f"search: {len(search.cv_results_)} settings in {time.perf_counter() - start:.1f} s")
print(search.summary(top=3).to_string())
print("best:", search.best_params_)

# 6. Evaluate the tuned model on the untouched test set, with ranking metrics too ---------
tuned = search.best_estimator_
report = fk.evaluate(
    tuned, test, metrics=["rmse", "mae", "ndcg@10", "recall@10", "novelty@10"], train=train
)
print({k: round(v, 4) for k, v in report.items()})

# 7. Recommend: top 5 unseen movies for user 1 -------------------------------------------
# A rating model ranks by predicted rating, which favours obscure films with a handful of
# high ratings; restricting candidates to movies with 20+ training ratings is the usual fix.
candidates = train.item_map.ids[train.item_counts >= 20]
items, scores = tuned.recommend(1, k=5, items=candidates)
for item, score in zip(items, scores, strict=True):
    print(f"  {score:.2f}  {titles[item]}")

# 8. A new user, folded in from three ratings without refitting ---------------------------
liked = [318, 2571, 296]  # Shawshank Redemption, The Matrix, Pulp Fiction
start = time.perf_counter()
folded = tuned.fold_in(liked, ratings=[5.0, 4.5, 4.0])
print(
    f"new user folded in in {1000 * (time.perf_counter() - start):.1f} ms; bias {folded.bias:+.2f}"
)
items, scores = tuned.recommend_new_user(liked, [5.0, 4.5, 4.0], k=5, candidates=candidates)
for item, score in zip(items, scores, strict=True):
    print(f"  {score:.2f}  {titles[item]}")

# 9. Save and load: identical predictions --------------------------------------------------
tuned.save("/tmp/tutorial-model.fk")
again = fk.load("/tmp/tutorial-model.fk")
assert (again.predict([1, 2], [318, 296]) == tuned.predict([1, 2], [318, 296])).all()
print("saved and reloaded: predictions identical")
