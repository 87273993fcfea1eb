"""VocaLiST (Kadandale et al., INTERSPEECH 2022): a lip-voice cross-modal transformer scoring pairs.

``network``, ``inputs`` (mel and lip-crop preparation), ``module`` (training), ``encoder_alignment``,
``clip_protocol`` (the authors' ``test_lrs2.py`` procedure), ``convert``.
"""
from avsync.registry import register_model

register_model("vocalist", paper="vocalist", summary="VocaLiST (Interspeech 2022): lip-voice cross-modal transformer",
               module="avsync.papers.vocalist.module.VocaLiSTModule", arch="vocalist",
               configs="avsync.papers.vocalist.network:VOCALIST_CONFIGS", converter="avsync.papers.vocalist.convert",
               detector="vocalist")
register_model("vocalist_toy", paper="vocalist", summary="VocaLiST at toy scale (CPU)",
               module="avsync.papers.vocalist.module.VocaLiSTModule", arch="vocalist_toy",
               configs="avsync.papers.vocalist.network:VOCALIST_CONFIGS", detector="vocalist", public=False)
