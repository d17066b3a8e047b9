"""The book's ``Trainer``, under the name ``common/trainer.py`` gives it.

The code lives in :mod:`xpscratch.training` (the loop, its callbacks, the run's state);
this module keeps ``from xpscratch.trainer import Trainer`` working.
"""

from .training.loop import SHUFFLE_PURPOSE, NonFiniteLossError, Trainer, TrainHistory

__all__ = ["SHUFFLE_PURPOSE", "NonFiniteLossError", "TrainHistory", "Trainer"]
