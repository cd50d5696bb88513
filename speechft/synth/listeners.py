"""Render listeners: callables told of every utterance synthesised (tests count them; a caller
could log or stop a run). They run in the worker threads, just before the audio is finished."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .voices import Voice

RenderListener = Callable[[str, "Voice", int], None]  # (text, voice, seed)

_listeners: list[RenderListener] = []
_lock = threading.Lock()


def add_render_listener(listener: RenderListener) -> Callable[[], None]:
    """Call `listener(text, voice, seed)` for every utterance synthesised from now on.

    An exception it raises stops that utterance as if synthesis had raised it.
    Returns:
        a function that removes the listener again.
    """
    with _lock:
        _listeners.append(listener)

    def remove() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return remove


@contextlib.contextmanager
def render_listener(listener: RenderListener) -> Iterator[None]:
    """`add_render_listener` for the duration of a with-block."""
    remove = add_render_listener(listener)
    try:
        yield
    finally:
        remove()


@contextlib.contextmanager
def count_renders() -> Iterator[list[str]]:
    """Yield a list that gets the voice tag ("engine:voice") of each utterance synthesised in the block."""
    tags: list[str] = []
    with render_listener(lambda text, voice, seed: tags.append(voice.tag)):
        yield tags


def notify_render(text: str, voice: Voice, seed: int) -> None:
    """Tell every listener that `text` is being synthesised by `voice` (called by the renderers)."""
    with _lock:
        current = list(_listeners)
    for listener in current:
        listener(text, voice, seed)
