"""Evidence attribution for the grid classifiers (Synchformer §4.1): :mod:`~avsync.attribution.masks`
computes per-0.1 s scores by random masking, :mod:`~avsync.attribution.plots` draws them over the
frames and the waveform, :mod:`~avsync.attribution.cli` is ``avsync attribute``."""
