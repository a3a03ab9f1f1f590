"""Request and response bodies of the service (pydantic), shown in the OpenAPI docs.

Ids are JSON numbers or strings, exactly as the model knows them (see ``/model``'s
``user_id_type`` and ``item_id_type``); a string id sent to a model with integer ids (or
the reverse) is refused with a message saying which to send, never silently missed.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

__all__ = [
    "BatchRequest",
    "BatchResponse",
    "ModelInfo",
    "NewUserRequest",
    "NewUserResponse",
    "PredictRequest",
    "PredictResponse",
    "RecommendRequest",
    "RecommendResponse",
    "ReloadRequest",
]

#: a raw user or item id: a JSON integer or a JSON string
RawId = Union[StrictInt, StrictStr]  # noqa: UP007 (pydantic reads it at runtime)
#: a rating or interaction strength; bounded so float32 confidences cannot overflow
Number = Annotated[
    Union[StrictInt, StrictFloat],  # noqa: UP007
    Field(ge=-1e6, le=1e6),
]


class _Strict(BaseModel):
    # unknown fields are an error: a misspelt "exclude_seen" must not be ignored silently
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RecommendRequest(_Strict):
    user: RawId = Field(description="raw user id, as in the training data")
    k: StrictInt = Field(10, ge=1, description="number of items (1 .. the server's max_k)")
    exclude_seen: bool = Field(True, description="leave out the user's training items")
    items: list[RawId] | None = Field(
        None, description="restrict the candidates to these raw item ids"
    )


class ScoredItem(BaseModel):
    item: RawId
    score: float
    title: str | None = None


class RecommendResponse(BaseModel):
    user: RawId
    items: list[ScoredItem]


class BatchRequest(_Strict):
    users: list[RawId] = Field(min_length=1, description="raw user ids (at most max_batch)")
    k: StrictInt = Field(10, ge=1)
    exclude_seen: bool = True


class BatchResponse(BaseModel):
    results: list[RecommendResponse]


class NewUserRequest(_Strict):
    items: list[RawId] = Field(
        min_length=1, description="raw ids of the items the visitor rated or liked"
    )
    ratings: list[Number] | None = Field(
        None, description="one value per item (required by explicit-rating models)"
    )
    k: StrictInt = Field(10, ge=1)
    explain: bool = Field(True, description="say which given items drove each recommendation")


class Contribution(BaseModel):
    item: RawId
    contribution: float
    title: str | None = None


class ExplainedItem(ScoredItem):
    because: list[Contribution] = []


class NewUserResponse(BaseModel):
    items: list[ExplainedItem]
    method: str | None = Field(None, description="how contributions were computed")


class PredictRequest(_Strict):
    pairs: list[tuple[RawId, RawId]] = Field(
        min_length=1, description="[[user, item], ...] pairs of raw ids"
    )
    unknown: Literal["error", "fallback"] = Field(
        "error",
        description='"error": 404 for an unknown id; "fallback": the model\'s fallback score',
    )


class Prediction(BaseModel):
    user: RawId
    item: RawId
    score: float


class PredictResponse(BaseModel):
    predictions: list[Prediction]


class ReloadRequest(_Strict):
    path: str | None = Field(None, description="model file to load (default: the current one)")


class ModelInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_class: str
    parameters: dict
    users: int
    items: int
    explicit: bool
    user_id_type: str
    item_id_type: str
    has_titles: bool
    can_fold_in: bool
    can_similar_items: bool
    factorkit_version: str
    saved_by_version: str | None
    path: str
    sha256: str
    trained_at: str = Field(description="the model file's modification time (UTC, ISO 8601)")
    loaded_at: str
