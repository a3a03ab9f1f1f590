"""The service over real HTTP: answers equal the library's, and what a client relies on."""

from __future__ import annotations

import numpy as np
import pytest

import factorkit as fk
from factorkit.models._explain import explain_new_user


def test_health_and_model_info(client, model):
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/model").json()
    assert info["model_class"] == "ImplicitALS"
    assert info["parameters"]["factors"] == 16
    assert info["users"] == len(model.user_map_) and info["items"] == len(model.item_map_)
    assert info["user_id_type"] == "int" and info["item_id_type"] == "int"
    assert info["explicit"] is False and info["has_titles"] and info["can_fold_in"]
    assert len(info["sha256"]) == 64 and info["factorkit_version"] == fk.__version__
    assert info["trained_at"].endswith("+00:00")


def test_recommend_equals_the_library(client, model):
    r = client.post("/recommend", json={"user": 1, "k": 5})
    assert r.status_code == 200
    body = r.json()
    ids, scores = model.recommend(1, k=5)
    assert body["user"] == 1
    assert [x["item"] for x in body["items"]] == ids.tolist()
    np.testing.assert_allclose([x["score"] for x in body["items"]], scores, rtol=1e-6)
    assert [x["title"] for x in body["items"]] == model.item_titles(ids)
    # exclude_seen and a candidate list are honoured
    seen = client.post("/recommend", json={"user": 1, "k": 3, "exclude_seen": False}).json()
    want = model.recommend(1, k=3, exclude_seen=False)[0].tolist()
    assert [x["item"] for x in seen["items"]] == want
    only = client.post("/recommend", json={"user": 1, "k": 5, "items": [1, 2, 3, 4, 5, 6]}).json()
    assert {x["item"] for x in only["items"]} <= {1, 2, 3, 4, 5, 6}


def test_batch_equals_the_library(client, model):
    body = client.post("/recommend/batch", json={"users": [1, 2, 3], "k": 4}).json()
    ids, _ = model.recommend([1, 2, 3], k=4)
    assert [r["user"] for r in body["results"]] == [1, 2, 3]
    assert [[x["item"] for x in r["items"]] for r in body["results"]] == ids.tolist()


def test_new_user_fold_in_with_explanations(client, model):
    liked = [260, 1196, 1210]
    body = client.post("/recommend/new-user", json={"items": liked, "k": 5}).json()
    ids, scores = model.recommend_new_user(liked, k=5)
    assert [x["item"] for x in body["items"]] == ids.tolist()
    np.testing.assert_allclose([x["score"] for x in body["items"]], scores, rtol=1e-4)
    assert body["method"] == "linear"
    for row in body["items"]:
        expl = explain_new_user(model, liked, item=row["item"])
        # "because" lists the given items with the largest positive contributions
        want = [(i, c) for i, c in expl.contributions[:3] if c > 0]
        assert [(b["item"], pytest.approx(b["contribution"])) for b in row["because"]] == want
        assert {b["item"] for b in row["because"]} <= set(liked)
        assert all(b["title"] for b in row["because"])
    assert not set(ids.tolist()) & set(liked)


def test_predict_similar_search_onboarding(client, model):
    body = client.post("/predict", json={"pairs": [[1, 260], [2, 1]]}).json()
    np.testing.assert_allclose(
        [p["score"] for p in body["predictions"]], model.predict([1, 2], [260, 1]), rtol=1e-6
    )
    sim = client.get("/items/260/similar", params={"k": 4}).json()
    assert [x["item"] for x in sim["items"]] == model.similar_items(260, k=4)[0].tolist()
    assert sim["title"].startswith("Star Wars")
    found = client.get("/items", params={"q": "STAR WARS", "limit": 5}).json()["items"]
    assert found and all("star wars" in x["title"].lower() for x in found)
    pops = [x["popularity"] for x in found]
    assert pops == sorted(pops, reverse=True)  # most popular first
    assert client.get("/items", params={"q": "no such title xyz"}).json()["items"] == []
    onboarding = client.get("/onboarding", params={"n": 8}).json()["items"]
    assert [x["item"] for x in onboarding] == fk.onboarding_items(model, n=8).tolist()


def test_metrics_count_requests_with_latency_histograms(client):
    before = client.get("/metrics").text
    for _ in range(3):
        client.post("/recommend", json={"user": 1, "k": 2})
    client.post("/recommend", json={"user": 1, "k": 0})
    text = client.get("/metrics").text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")

    def value(text, line_start):
        for line in text.splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    ok = 'factorkit_requests_total{endpoint="/recommend",method="POST",status="200"}'
    bad = 'factorkit_requests_total{endpoint="/recommend",method="POST",status="422"}'
    assert value(text, ok) - value(before, ok) == 3
    assert value(text, bad) - value(before, bad) == 1
    inf = 'factorkit_request_duration_seconds_bucket{endpoint="/recommend",le="+Inf"}'
    count = 'factorkit_request_duration_seconds_count{endpoint="/recommend"}'
    assert value(text, inf) == value(text, count) >= 4
    assert "# TYPE factorkit_request_duration_seconds histogram" in text


def test_page_and_docs_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and '<script src="/static/app.js">' in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/recommend", "/recommend/new-user", "/predict", "/admin/reload"} <= set(paths)
