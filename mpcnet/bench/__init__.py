"""Benchmarks: the face network against GFPGANv1Clean, the restore pipeline, the degradation pipeline."""
