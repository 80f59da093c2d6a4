"""What ``mpcnet restore`` reports: one :class:`ImageResult` per input, the seconds of each stage
(:class:`StageTimer`) and the :class:`Summary` of a run."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

STAGES = ("read", "detect", "align", "network", "background", "paste", "write")
_TIMING = threading.Lock()  # stages run on several threads; a module lock keeps timers picklable (gathered)


@dataclass
class ImageResult:
    """What happened to one input; ``status`` is restored | no-face | skipped | failed."""

    source: str
    status: str
    output: str | None = None
    faces: int = 0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class StageTimer:
    """Wall seconds spent per pipeline stage, summed over the threads that run it (stages on
    different threads overlap, so the stages add up to more than the whole)."""

    seconds: dict = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            with _TIMING:
                self.seconds[stage] += time.perf_counter() - start


@dataclass
class Summary:
    results: list = field(default_factory=list)
    timer: StageTimer = field(default_factory=StageTimer)
    seconds: float = 0.0
    interrupted: bool = False  # Ctrl-C or SIGTERM stopped the batch; ``results`` holds what finished

    @property
    def faces(self) -> int:
        return sum(r.faces for r in self.results)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @classmethod
    def merge(cls, parts: list[Summary], order: list[Path]) -> Summary:
        """The summaries of the processes of one run as one: results listed as ``order`` gives the
        inputs, seconds per stage summed over processes, wall seconds of the slowest."""
        index = {str(source): i for i, source in enumerate(order)}
        timer = StageTimer({s: sum(p.timer.seconds[s] for p in parts) for s in STAGES})
        return cls(sorted((r for p in parts for r in p.results), key=lambda r: index[r.source]), timer,
                   max(p.seconds for p in parts), any(p.interrupted for p in parts))

    def to_dict(self) -> dict:
        faces = self.faces
        return {
            "files": len(self.results),
            **{s.replace("-", "_"): self.count(s) for s in ("restored", "no-face", "skipped", "failed")},
            "faces": faces, "seconds": round(self.seconds, 3), "interrupted": self.interrupted,
            "faces_per_s": round(faces / self.seconds, 3) if self.seconds else None,
            "stage_seconds": {k: round(v, 3) for k, v in self.timer.seconds.items()},
            "results": [asdict(r) for r in self.results],
        }
