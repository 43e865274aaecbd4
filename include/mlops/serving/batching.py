"""Micro-batching: requests that arrive while a batch is scored are scored together next.

Scoring goes through a :class:`MicroBatcher` per loaded model: requests that arrive while a
batch is being scored wait (no timer) and are scored together in the next call. At
concurrency 1 that adds nothing; under load it turns N pipeline calls of one row into one
call of N rows, which costs about the same as one, since the scikit-learn pipeline's time
is per call, not per row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from include.mlops.serving.rows import Rows

if TYPE_CHECKING:
    from include.mlops.serving.state import LoadedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoredRows:
    """One request's share of a scored batch, as plain Python values.

    Attributes:
        inference_ids: One id per row.
        predictions: Label (classifiers) or value (regression) per row.
        probability: Positive-class (binary) or predicted-class (multiclass) probability
            per row; ``None`` for regression.
        class_probabilities: Per row, one probability per class in model class order;
            ``None`` for regression.
        explanations: When asked for (``?explain=true``): the output space explained and
            one explanation per row (:meth:`~include.mlops.clarify.explain.Attributions.row`).
    """

    inference_ids: list[str]
    predictions: list[Any]
    probability: list[float] | None = None
    class_probabilities: list[list[float]] | None = None
    explanations: tuple[str, list[dict[str, Any]]] | None = None


@dataclass(frozen=True)
class Scored:
    """One request's place in a scored batch (what a batch hook sees).

    Attributes:
        ticket: What the caller attached to the request (e.g. its capture decision).
        rows: The request's validated rows.
        result: Its scores.
        start: Index of its first row in the batch frame.
    """

    ticket: Any
    rows: Rows
    result: ScoredRows
    start: int


#: Called once per scored batch, before its requests are answered, with the model, the
#: batch's DataFrame and the requests that carried a ticket (capture and shadow hooks).
BatchHook = Callable[["LoadedModel", pd.DataFrame, list[Scored]], None]


class ScoringError(RuntimeError):
    """The model raised while scoring valid input (the endpoint answers 500)."""


class MicroBatcher:
    """Scores requests for one model, batching the ones that arrive during a call.

    Args:
        model: The model whose requests it scores.
        executor: Thread pool to score in (``None``: score in the event loop).
        max_rows: Cap on rows per pipeline call.
        on_batch: Called once per scored batch with the requests that carry a ticket.
    """

    def __init__(
        self,
        model: LoadedModel,
        *,
        executor: Executor | None,
        max_rows: int,
        on_batch: BatchHook | None = None,
    ) -> None:
        self.model = model
        self.executor = executor
        self.max_rows = max_rows
        self.on_batch = on_batch
        self._pending: list[_Pending] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.rows = 0

    async def score(
        self,
        rows: Rows,
        ticket: Any = None,
        *,
        explain: bool = False,
        explain_top: int | None = None,
    ) -> ScoredRows:
        """Score one request's rows (awaits the batch it joins).

        Requests that ask for explanations are batched with each other, never with the
        ones that do not: those pay nothing for explanations. An explained batch is scored
        and explained from one feature matrix (:meth:`LoadedModel.score_frame`).

        Args:
            rows: Validated rows.
            ticket: Anything; when not ``None``, the request is handed to ``on_batch``
                with it once scored, before it is answered.
            explain: Also explain the rows (:attr:`ScoredRows.explanations`).
            explain_top: Keep each row's ``explain_top`` largest contributions (``None``: all).

        Raises:
            ScoringError: The pipeline (or the explainer) raised on these rows.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ScoredRows] = loop.create_future()
        wish = _Explain(explain_top) if explain else None
        self._pending.append(_Pending(rows, future, ticket, wish))
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            # One turn of the loop: requests parsed in the same turn join this batch.
            await asyncio.sleep(0)
            while self._pending:
                taken = self._take()
                plain = [p for p in taken if p.explain is None]
                explained = [p for p in taken if p.explain is not None]
                for batch in (plain, explained):
                    if not batch:
                        continue
                    if batch is explained and self.model.explains_slowly:
                        # A forest's TreeSHAP takes tens of milliseconds: off the event loop.
                        results = await asyncio.to_thread(self._run, batch)
                    elif self.executor is None:
                        results = self._run(batch)
                    else:
                        results = await loop.run_in_executor(self.executor, self._run, batch)
                    for pending, result in zip(batch, results, strict=True):
                        if pending.future.done():
                            continue  # the client went away
                        if isinstance(result, BaseException):
                            pending.future.set_exception(result)
                        else:
                            pending.future.set_result(result)
        finally:
            self._draining = False
            if self._pending:  # arrived after the last check
                self._draining = True
                self._task = loop.create_task(self._drain())

    def _take(self) -> list[_Pending]:
        taken = 0
        for i, pending in enumerate(self._pending):
            if taken and taken + pending.rows.n_rows > self.max_rows:
                batch, self._pending = self._pending[:i], self._pending[i:]
                return batch
            taken += pending.rows.n_rows
        batch, self._pending = self._pending, []
        return batch

    def _run(self, batch: list[_Pending]) -> list[ScoredRows | BaseException]:
        """Score one batch: all plain requests, or all explained ones."""
        self.batches += 1
        self.rows += sum(p.rows.n_rows for p in batch)
        try:
            frame, scored = self._score(batch)
        except Exception as error:  # isolate the request that broke it
            if len(batch) == 1:
                return [self._failure(error)]
            return [self._run_one(pending) for pending in batch]
        results: list[ScoredRows | BaseException] = list(scored)
        self._hand_over(frame, batch, scored)
        return results

    def _run_one(self, pending: _Pending) -> ScoredRows | BaseException:
        try:
            frame, (scored,) = self._score([pending])
        except Exception as error:
            return self._failure(error)
        self._hand_over(frame, [pending], [scored])
        return scored

    def _score(self, batch: list[_Pending]) -> tuple[pd.DataFrame, list[ScoredRows]]:
        wishes = [p.explain for p in batch]
        tops = None if wishes[0] is None else [w.top if w else None for w in wishes]
        return self.model.score_frame([p.rows for p in batch], explain_tops=tops)

    def _hand_over(
        self, frame: pd.DataFrame, batch: list[_Pending], scored: list[ScoredRows]
    ) -> None:
        if self.on_batch is None:
            return
        entries: list[Scored] = []
        start = 0
        for pending, result in zip(batch, scored, strict=True):
            if pending.ticket is not None:
                entries.append(Scored(pending.ticket, pending.rows, result, start))
            start += pending.rows.n_rows
        if not entries:
            return
        try:
            self.on_batch(self.model, frame, entries)
        except Exception:  # a capture problem never fails the request
            log.exception("batch hook failed for %s", self.model.model_name)

    def _failure(self, error: Exception) -> ScoringError:
        log.error(
            "model %s version %s raised while scoring: %s: %s",
            self.model.model_name,
            self.model.version,
            type(error).__name__,
            error,
        )
        return ScoringError(
            f"model {self.model.model_name!r} version {self.model.version} failed to score "
            f"the request: {type(error).__name__}: {error}"
        )


@dataclass(frozen=True)
class _Explain:
    top: int | None


@dataclass
class _Pending:
    rows: Rows
    future: asyncio.Future[ScoredRows]
    ticket: Any
    explain: _Explain | None = None
