"""Every model with the capability serves; a missing capability is a clear 4xx."""

from __future__ import annotations

import pytest

import factorkit as fk


@pytest.mark.parametrize(
    ("make", "explicit"),
    [(lambda: fk.BaselineOnly(), True), (lambda: fk.MostPopular(), False)],
    ids=["BaselineOnly", "MostPopular"],
)
def test_other_models_serve(make, explicit, movielens, tmp_path, live_server):
    path = tmp_path / "m.fk"
    model = make().fit(movielens)
    model.save(path)
    with live_server(fk.serve.create_app(path)) as live:
        c = live.client
        info = c.get("/model").json()
        assert info["explicit"] is explicit and info["can_similar_items"] is False
        body = c.post("/recommend", json={"user": 1, "k": 3}).json()
        assert [x["item"] for x in body["items"]] == model.recommend(1, k=3)[0].tolist()
        new = {"items": [1, 260], "ratings": [5.0, 4.0], "k": 3}
        r = c.post("/recommend/new-user", json=new)
        assert r.status_code == 200, r.text
        want = model.recommend_new_user([1, 260], ratings=[5.0, 4.0], k=3)[0].tolist()
        assert [x["item"] for x in r.json()["items"]] == want
        assert r.json()["method"] == "leave-one-out"
        r = c.get("/items/1/similar")
        assert r.status_code == 422 and "no item factors, so no similar items" in r.json()["detail"]
        assert len(c.get("/onboarding", params={"n": 5}).json()["items"]) == 5
