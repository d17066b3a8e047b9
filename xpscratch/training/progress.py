"""The one progress mechanism: a tqdm bar, imported only when one is shown.

``tqdm.auto`` gives a notebook the widget and a terminal the text bar; in a notebook
without ipywidgets it falls back to the text bar (its warning about that is silenced),
and without tqdm at all there is simply no bar.  Both the Trainer's :class:`Progress`
callback and the experiments' own loops open their bars here.
"""

from __future__ import annotations

import warnings
from typing import Any

from .._interrupts import deferred_interrupts

__all__ = ["NoBar", "open_bar"]


class NoBar:
    """A bar that shows nothing, with the methods of a tqdm bar that xpscratch uses."""

    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def write(self, line: str) -> None:
        print(line)

    def close(self) -> None:
        pass


def open_bar(total: int, desc: str, *, enabled: bool = True, **options: Any) -> Any:
    """A tqdm bar of ``total`` steps (``options`` go to tqdm), or a :class:`NoBar`."""
    if not enabled:
        return NoBar()
    try:
        # a Ctrl-C waits for the import to end: one cut in the middle left tqdm's modules
        # half-initialised, and every later bar failed with a NameError
        with deferred_interrupts(), warnings.catch_warnings():
            # "IProgress not found": a notebook without ipywidgets gets the text bar
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm  # lazily: importing xpscratch must stay light
    except ImportError:
        return NoBar()
    try:
        return tqdm(total=total, desc=desc, **options)
    except ImportError:  # older tqdm: the widget fails only when the bar is made
        from tqdm.std import tqdm as text_tqdm

        return text_tqdm(total=total, desc=desc, **options)
