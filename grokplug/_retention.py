"""Which checkpoints a run keeps: log-spaced over the whole run, plus the detector's candidates.

θ_pre is only known in hindsight and θ_grok needs the run's best validation score, so the tracker
cannot keep "just the two". It keeps a log-spaced skeleton (for curves across training), the latest
checkpoint (for resume) and every step the online detector says may still become θ_pre or θ_grok.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class RetentionPolicy:
    """Decide which saved steps survive.

    :param per_octave: log-spaced density: the first saved step in each ``2**(1/per_octave)``-wide
        bucket of step numbers is kept (2 → about 2 checkpoints per doubling of the step count).
    :param keep_last: how many of the most recent checkpoints to keep.
    :param keep_all: keep everything (dense saving; for comparisons and small runs).
    """

    per_octave: int = 2
    keep_last: int = 1
    keep_all: bool = False

    @classmethod
    def dense(cls) -> RetentionPolicy:
        return cls(keep_all=True)

    def bucket(self, step: int) -> float:
        return -math.inf if step <= 0 else math.floor(self.per_octave * math.log2(step))

    def keep(self, saved_steps: Iterable[int], protected: Iterable[int] = ()) -> set[int]:
        """The subset of ``saved_steps`` to keep; the rest may be deleted."""
        steps = sorted(set(saved_steps))
        if self.keep_all:
            return set(steps)
        keep = set(steps[-self.keep_last :]) if self.keep_last > 0 else set()
        seen_buckets: set[float] = set()
        for step in steps:  # first step in each log bucket: stable as later steps arrive
            bucket = self.bucket(step)
            if bucket not in seen_buckets:
                seen_buckets.add(bucket)
                keep.add(step)
        keep.update(s for s in protected if s in set(steps))
        return keep

    def only_the_resume_point(self, step: int, saved_steps: Iterable[int], protected: Iterable[int] = ()) -> bool:
        """Whether the newest ``step`` is kept only as the one latest checkpoint (the resume point).

        Such a checkpoint is deleted by the next save unless something protects it by then, so the
        tracker may hold it in memory instead of writing it. Never true when more than one recent
        checkpoint is wanted (``keep_last > 1``) or everything is kept.
        """
        if self.keep_all or self.keep_last != 1:
            return False
        return step not in replace(self, keep_last=0).keep(saved_steps, protected)

    def to_dict(self) -> dict[str, object]:
        return {"per_octave": self.per_octave, "keep_last": self.keep_last, "keep_all": self.keep_all}
