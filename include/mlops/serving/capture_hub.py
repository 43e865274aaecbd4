"""One capture writer per endpoint of a replica, started when the endpoint first appears.

The endpoint offers each scored batch's rows here (:meth:`CaptureHub.offer`); the
endpoint's :class:`~include.mlops.serving.capture.CaptureWriter` takes them off the
request path.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import TYPE_CHECKING, Any

from include.mlops.serving.capture import CaptureWriter
from include.mlops.serving.config import ServingSettings
from include.mlops.serving.metrics import Labels
from include.mlops.serving.rows import Rows

if TYPE_CHECKING:
    from include.mlops.serving.batching import ScoredRows
    from include.mlops.serving.state import LoadedModel, ServingState

log = logging.getLogger(__name__)


class CaptureHub:
    """One capture writer per endpoint, created when the endpoint first appears.

    Args:
        settings: The replica's settings (lake, replica id, on/off).
        lake: The lake to write to (default: ``Lake.from_settings(settings.lake_settings)``).
    """

    def __init__(self, settings: ServingSettings, lake: Any = None) -> None:
        self.settings = settings
        self._lake = lake
        self.writers: dict[str, CaptureWriter] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.enabled = settings.capture

    def ensure(self, state: ServingState) -> None:
        """Start a writer for every endpoint of ``state`` that captures and has none yet.

        An endpoint captures when its capture share is above 0 or it has a shadow (whose
        records exist only to be compared).
        """
        if not self.enabled or self._closed:
            return
        for name, endpoint in state.endpoints.items():
            wanted = endpoint.capture_share > 0 or endpoint.shadow is not None
            if wanted and name not in self.writers:
                self._start(name)

    def _start(self, name: str) -> None:
        with self._lock:
            if name in self.writers or self._closed:
                return
            try:
                lake = self._lake
                if lake is None:
                    from include.mlops.lake.store import Lake
                    from include.mlops.settings import Settings

                    lake = self._lake = Lake.from_settings(
                        self.settings.lake_settings or Settings.from_env()
                    )
                writer = CaptureWriter(lake, name, replica=self.settings.replica_id)
                writer.start()
            except Exception:  # capture never stops serving
                log.exception("cannot start data capture for endpoint %s", name)
                return
            self.writers[name] = writer

    def offer(
        self,
        endpoint: str,
        model: LoadedModel,
        variant: str,
        rows: Rows,
        scored: ScoredRows,
        captured_at: dt.datetime,
        *,
        caller: str | None = None,
    ) -> None:
        """Hand validated rows, with one score per row, to the endpoint's writer.

        ``caller`` is the name of the API key the requests came with (never the key).

        The writer keeps a reference to the lists and converts them on its own thread;
        the caller must not change them afterwards (validated rows never are).
        """
        writer = self.writers.get(endpoint)
        if writer is None:
            return
        writer.offer(
            rows,
            inference_ids=scored.inference_ids,
            model_version=model.version,
            variant=variant,
            predictions=scored.predictions,
            probabilities=scored.probability,
            captured_at=captured_at,
            caller=caller,
        )

    def counters(self, attribute: str) -> dict[Labels, float]:
        """``{(endpoint,): writer.<attribute>}`` for the metrics callbacks."""
        return {(name,): float(getattr(w, attribute)) for name, w in list(self.writers.items())}

    def close(self, timeout: float = 30.0) -> None:
        """Flush and stop every writer (graceful shutdown)."""
        with self._lock:
            self._closed = True
            writers = list(self.writers.values())
        for writer in writers:
            try:
                writer.close(timeout)
            except Exception:
                log.exception("capture writer %r failed to close", writer)
