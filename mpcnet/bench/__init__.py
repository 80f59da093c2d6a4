"""Benchmarks: the face network against GFPGANv1Clean, the restore pipeline, the degradation pipeline."""


class BenchError(Exception):
    """A benchmark that cannot run; the message says why."""
