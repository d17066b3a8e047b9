"""Training: the book's Trainer, its callbacks, the one batch iterator and the run's state.

Layers, lowest first: :mod:`.batches` (epoch permutations cut in mini-batches) and
:mod:`.progress` (the tqdm bar) need only the backend and the random streams;
:mod:`.state` collects, checks and restores a run's state; :mod:`.callbacks` holds the
loop's extensions; :mod:`.compiled` traces a step into one ``jax.jit`` program; :mod:`.loop`
is the Trainer, which calls them.
"""

from .batches import batch_indices, iterate_batches
from .callbacks import Callback, Checkpoint, EarlyStopping, Progress, PruneAfter
from .compiled import CompiledStep, compile_step
from .loop import NonFiniteLossError, Trainer, TrainHistory

__all__ = [
    "Callback",
    "Checkpoint",
    "CompiledStep",
    "EarlyStopping",
    "NonFiniteLossError",
    "Progress",
    "PruneAfter",
    "TrainHistory",
    "Trainer",
    "batch_indices",
    "compile_step",
    "iterate_batches",
]
