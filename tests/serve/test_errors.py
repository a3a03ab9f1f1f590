"""Every bad request is a 4xx whose message says what was wrong and how to fix it."""

from __future__ import annotations

import json

import pytest

MAX_BATCH = 50  # as configured by conftest.py's server (checked by test_limits_match)
MAX_BODY = 64 * 1024

CASES = [
    # (method, path, body or raw bytes, status, words the message must contain)
    ("POST", "/recommend", b"{bad json", 422, ["not valid JSON", "JSON object"]),
    ("POST", "/recommend", b"[1, 2]", 422, ["must be a JSON object"]),
    ("POST", "/recommend", b"", 422, ["has no body", "Content-Type: application/json"]),
    ("POST", "/recommend", {"k": 3}, 422, ["'user' is required"]),
    ("POST", "/recommend", {"user": 1, "k": 0}, 422, ["k:", "greater than or equal to 1", "got 0"]),
    ("POST", "/recommend", {"user": 1, "k": -5}, 422, ["k:", "got -5"]),
    ("POST", "/recommend", {"user": 1, "k": 101}, 422, ["between 1 and 100", "max_k", "got 101"]),
    ("POST", "/recommend", {"user": 1, "k": "ten"}, 422, ["k:", "valid integer", '"ten"']),
    ("POST", "/recommend", {"user": 1.5}, 422, ["user must be an id", "got 1.5"]),
    ("POST", "/recommend", {"user": True}, 422, ["user must be an id", "got true"]),
    ("POST", "/recommend", {"user": 1, "exclude_seeen": 1}, 422, ["unknown field 'exclude_seeen'"]),
    ("POST", "/recommend", {"user": 999999}, 404, ["unknown user id 999999", "recommend_new_user"]),
    ("POST", "/recommend", {"user": "1"}, 422, ["is a string", "integers", "JSON number (1"]),
    ("POST", "/recommend", {"user": 1, "items": [1, 99999999]}, 404, ["unknown item id 99999999"]),
    ("POST", "/recommend/batch", {"users": []}, 422, ["users:", "at least 1"]),
    (
        "POST",
        "/recommend/batch",
        {"users": list(range(1, MAX_BATCH + 2))},
        413,
        [f"holds {MAX_BATCH + 1} entries", f"at most {MAX_BATCH}", "split the request"],
    ),
    (
        "POST",
        "/recommend/new-user",
        {"items": [260], "ratings": [1, 2]},
        422,
        ["2 values for 1 items", "one rating per item"],
    ),
    ("POST", "/recommend/new-user", {"items": [260, 260]}, 422, ["repeated ids"]),
    ("POST", "/recommend/new-user", {"items": [260], "ratings": [-1]}, 422, ["must be >= 0"]),
    ("POST", "/recommend/new-user", {"items": [424242]}, 404, ["unknown item id 424242"]),
    ("POST", "/recommend/new-user", {"items": ["Toy Story"]}, 422, ["is a string", "integers"]),
    (
        "POST",
        "/recommend/new-user",
        {"items": [1], "ratings": ["x"]},
        422,
        ["ratings.0 must be a number", '"x"'],
    ),
    (
        "POST",
        "/recommend/new-user",
        {"items": [1], "ratings": [1e308]},
        422,
        ["ratings.0", "less than or equal to 1000000"],
    ),
    ("POST", "/predict", {"pairs": [[1]]}, 422, ["pairs.0"]),
    ("POST", "/predict", {"pairs": [[2**70, 1]]}, 404, [f"unknown user id {2**70}"]),
    ("POST", "/predict", {"pairs": [[1, 777777]]}, 404, ["unknown item id 777777"]),
    ("GET", "/items/abc/similar", None, 422, ["'abc' in the path is not an integer"]),
    ("GET", "/items/555555/similar", None, 404, ["unknown item id 555555"]),
    ("GET", "/items/260/similar?k=0", None, 422, ["k:", "got"]),
    ("GET", "/items?limit=100000", None, 422, ["limit:", "less than or equal to 1000"]),
    ("GET", "/no/such/endpoint", None, 404, ["no endpoint GET /no/such/endpoint", "/docs"]),
    ("DELETE", "/recommend", None, 405, ["DELETE is not allowed on /recommend"]),
    ("POST", "/admin/reload", {}, 401, ["Authorization: Bearer TOKEN"]),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "words"), CASES)
def test_bad_requests_get_a_clear_4xx(client, method, path, body, status, words):
    if isinstance(body, bytes):
        r = client.request(method, path, content=body, headers={"content-type": "application/json"})
    elif body is None:
        r = client.request(method, path)
    else:
        r = client.request(method, path, json=body)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    for word in words:
        assert word in detail, detail


def test_json_without_its_content_type_is_explained(client):
    r = client.post("/recommend", content=b'{"user": 1}', headers={"content-type": "text/plain"})
    assert r.status_code == 422
    assert "not read as JSON" in r.json()["detail"]
    assert "Content-Type: application/json" in r.json()["detail"]


def test_oversized_body_is_refused_before_parsing(client):
    body = json.dumps({"users": [1] * (MAX_BODY // 2)}).encode()
    r = client.post("/recommend/batch", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert f"at most {MAX_BODY} bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit is counted while reading
        for _ in range(MAX_BODY // 1000 + 2):
            yield b" " * 1000

    r = client.post("/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "max_body_bytes" in r.json()["detail"]


def test_limits_match(limits):
    assert (limits["max_batch"], limits["max_body"]) == (MAX_BATCH, MAX_BODY)


def test_wrong_admin_token_is_refused(client, limits):
    r = client.post("/admin/reload", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 403 and "wrong admin token" in r.json()["detail"]
    r = client.post("/admin/reload", headers={"Authorization": f"Basic {limits['admin_token']}"})
    assert r.status_code == 401


def test_library_errors_keep_their_text(client, model):
    from factorkit.exceptions import DataError, UnknownIdError

    with pytest.raises(DataError) as err:
        model.recommend_new_user([260, 1], ratings=[1.0, -2.0])
    r = client.post("/recommend/new-user", json={"items": [260, 1], "ratings": [1.0, -2.0]})
    assert r.status_code == 422 and r.json()["detail"] == str(err.value)
    with pytest.raises(UnknownIdError) as err:
        model.similar_items(31337)
    r = client.get("/items/31337/similar")
    assert r.status_code == 404 and r.json()["detail"] == str(err.value)


def test_create_app_checks_its_arguments(model_path):
    import factorkit as fk
    from factorkit.exceptions import InvalidParameterError, ModelFormatError

    message = r"create_app: max_k must be an int >= 1; got 0"
    with pytest.raises(InvalidParameterError, match=message):
        fk.serve.create_app(model_path, max_k=0)
    with pytest.raises(InvalidParameterError, match="admin_token must be None or a non-empty str"):
        fk.serve.create_app(model_path, admin_token="")
    with pytest.raises(ModelFormatError, match="no model file at"):
        fk.serve.create_app(model_path.parent / "missing.fk")
