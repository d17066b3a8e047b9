"""Hyperparameter search: the book's random search, Bayesian search (TPE), in parallel.

The chapter ends by tuning the learning rate and weight decay: sample them on a log
scale, train briefly, judge on a validation split (never the test set), narrow the
ranges around the best trials and search again.  This package does that at scale::

    from xpscratch.search import Objective, search

    result = search("lr=log:1e-6:1e-2,weight_decay=log:1e-8:1e-4", trials=100, workers=4)
    print(result.summary())            # best trials; the narrowed space for round two
    result = search(result.narrowed(), trials=100, workers=4)

* :func:`search` with ``sampler="random"`` (reproducible from ``seed``: trial k's
  hyperparameters depend on (seed, study name, k) only) or ``"tpe"`` (Optuna's TPE);
  ``workers`` processes on this machine; ``storage`` (an Optuna storage URL) to resume
  an interrupted search and to let any number of machines work on one study.
* :class:`Objective`: what a trial trains (the book's network on a train/validation
  split), with optional pruning of trials still at chance level.
* The space: :class:`LogUniform`, :class:`Uniform`, :class:`Choice`, or the command
  line's ``"lr=log:1e-6:1e-2,optimizer=choice:sgd|adam"`` (:func:`parse_space`), and
  :func:`narrow` around the best trials.

Random search without a storage needs only xpscratch; TPE and storages need Optuna
(``pip install 'xpscratch[search]'``, which also brings the PostgreSQL driver).
"""

from __future__ import annotations

from ._storage import StorageError
from .objective import HYPERPARAMETERS, Objective
from .space import (
    Choice,
    LogUniform,
    Space,
    Uniform,
    format_space,
    narrow,
    parse_space,
    sample,
    space_to_dict,
)
from .study import SAMPLERS, SearchError, SearchResult, check_storage, search

BOOK_SPACE = "lr=log:1e-6:1e-2,weight_decay=log:1e-8:1e-4"  # the book's ranges

__all__ = [
    "BOOK_SPACE",
    "HYPERPARAMETERS",
    "SAMPLERS",
    "Choice",
    "LogUniform",
    "Objective",
    "SearchError",
    "SearchResult",
    "StorageError",
    "Space",
    "Uniform",
    "check_storage",
    "format_space",
    "narrow",
    "parse_space",
    "sample",
    "search",
    "space_to_dict",
]
