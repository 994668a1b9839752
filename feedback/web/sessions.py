"""Idle page sessions expire, so the memory the open sessions hold stays bounded.

Gradio keeps two things per browser session (``gradio/state_holder.py``): the values of its
``gr.State`` components (our :class:`~feedback.web.page.ChatSession`), which ``gr.State(time_to_live=...)``
drops that many seconds after they were last set (Gradio's own clean-up runs every second), and
a ``SessionState`` holding a copy of the page's component configs and of every value an event
sent or returned (the whole chat, for a chatbot). The second is only ever dropped when more than
``state_session_capacity`` (10,000) sessions exist, oldest first, so on a busy app it holds up to
10,000 chats whatever their age. :func:`expire_idle_sessions` drops the sessions no event has
used for the idle time; :func:`install_session_expiry` runs it periodically in the server's
event loop once the app starts.

A user who comes back to an expired page goes on in the same conversation: the page's replies
carry their ``message_id``, and the next turn finds its conversation from them.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import gradio as gr
from loguru import logger


def expire_idle_sessions(holder: Any, idle_seconds: float, now: datetime.datetime | None = None) -> int:
    """Drop from a Gradio ``StateHolder`` every session no event has used for ``idle_seconds``
    (its ``gr.State`` values first, through their ``delete_callback``). Returns how many went.

    ``holder`` is ``gradio.state_holder.StateHolder`` (``blocks.state_holder`` once served);
    ``now`` defaults to the current local time, the clock Gradio stamps sessions with.
    """
    now = now or datetime.datetime.now()
    cutoff = now - datetime.timedelta(seconds=idle_seconds)
    idle = [sid for sid, used in list(holder.time_last_used.items()) if used < cutoff]
    for sid in idle:
        holder.delete_state(sid)  # calls each gr.State's delete_callback
        with holder.lock:
            used = holder.time_last_used.get(sid)
            if used is not None and used < cutoff:  # not used again meanwhile
                holder.session_data.pop(sid, None)
                holder.time_last_used.pop(sid, None)
    return len(idle)


def install_session_expiry(blocks: gr.Blocks, idle_seconds: float) -> None:
    """Expire sessions of ``blocks`` idle for ``idle_seconds`` (see :func:`expire_idle_sessions`),
    checking every quarter of it (at least every 30 s) from when the app starts serving.

    Raises:
        ValueError: when ``idle_seconds`` is not a positive number.
    """
    if not idle_seconds > 0:
        raise ValueError(f"'idle_seconds' must be a positive number of seconds, not {idle_seconds!r}")
    period = max(0.05, min(idle_seconds / 4, 30.0))
    tasks: list[asyncio.Task[None]] = []

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(period)
            holder = getattr(blocks, "state_holder", None)
            if holder is None:
                continue
            try:
                gone = expire_idle_sessions(holder, idle_seconds)
            except Exception:  # never let one bad sweep end the expiry
                logger.exception("expiring idle page sessions failed")
                continue
            if gone:
                logger.debug("{} page session(s) idle for {} s expired", gone, idle_seconds)

    async def start() -> None:
        loop = asyncio.get_running_loop()
        if not tasks or tasks[0].done() or tasks[0].get_loop() is not loop:  # one sweeper per running server
            tasks[:] = [loop.create_task(sweep_forever())]

    blocks.extra_startup_events.append(start)
