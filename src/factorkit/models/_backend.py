"""The data's type picks the backend: ``fit`` on distributed data trains on the cluster.

Models never import the distributed package: data can only be distributed once
``factorkit.distributed`` has been imported (it defines the type), so a look in
``sys.modules`` tells without importing Dask.
"""

from __future__ import annotations

import sys
from typing import Any

from factorkit.exceptions import InvalidParameterError

__all__ = [
    "fit_backend_options",
    "fit_distributed",
    "is_distributed",
    "reject_distributed_weights",
]


def is_distributed(data: Any) -> bool:
    """Whether ``data`` is a :class:`factorkit.distributed.DistributedInteractions`."""
    module = sys.modules.get("factorkit.distributed")
    return module is not None and isinstance(data, module.DistributedInteractions)


def fit_distributed(model: Any, train: Any, validation: Any, options: dict[str, Any]) -> Any:
    """Train ``model`` on the cluster holding ``train`` (``factorkit.distributed.fit``)."""
    from factorkit.distributed import fit

    return fit(model, train, validation, **options)


def fit_backend_options(model: Any, options: dict[str, Any]) -> None:
    """Options of the distributed backend given to a one-machine fit: a clear error."""
    if options:
        raise InvalidParameterError(
            f"{type(model).__name__}.fit: {', '.join(sorted(options))} apply to distributed "
            "data only (fk.distributed.read_parquet / from_dask); on one machine pass the "
            "training data and, optionally, validation"
        )


def reject_distributed_weights(model: Any, sample_weight: Any) -> None:
    """``sample_weight`` given with distributed data: a clear error (not supported yet)."""
    if sample_weight is not None:
        raise InvalidParameterError(
            f"{type(model).__name__}.fit: sample_weight is not supported on the Dask backend "
            "yet (distributed data); fit without it, or collect the data onto one machine "
            "(an fk.Interactions) to fit with weights"
        )
