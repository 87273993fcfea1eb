"""DiVAS (CVPR 2024): a frame-rate-independent audio-visual distance model; active-speaker detection.
No code or weights are published; the paper's text rules.

``network``, ``module`` (training, whole-clip and multi-rate evaluation), ``asd``, ``plots``.
"""
from avsync.registry import register_model

for _arch, _what in (("divas_face", "96 px face crops"), ("divas_frame", "240 px whole frames"), ("divas_toy", "toy scale")):
    register_model(_arch, paper="divas", summary=f"DiVAS (CVPR 2024), {_what}: frame-rate-independent distances, ASD",
                   module="avsync.papers.divas.module.DiVASModule", arch=_arch,
                   configs="avsync.papers.divas.network:DIVAS_CONFIGS", detector="divas", public=_arch == "divas_face")
