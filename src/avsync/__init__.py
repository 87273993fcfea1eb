"""avsync: audio-visual synchronisation experiments (AVST, SparseSync, Synchformer, VocaLiST, DiVAS)."""

__version__ = "0.1.0"
