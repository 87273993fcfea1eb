"""Evidence attribution for the grid classifiers (Synchformer §4.1): :mod:`~avsync.papers.synchformer.attribution.masks`
computes per-0.1 s scores by random masking, :mod:`~avsync.papers.synchformer.attribution.plots` draws them over the
frames and the waveform, :mod:`~avsync.papers.synchformer.attribution.cli` is ``avsync attribute``."""
