"""AVST (Khosravan et al., BMVC 2021): a multi-modal transformer scoring audio-visual pairs, the
offset found by a score search. No code or weights are published; the paper's text rules.

``network`` (the transformer), ``module`` (training and evaluation), ``attention_plots``.
"""
from avsync.registry import register_model

_VARIANTS = {"avst_enc": "encoder", "avst_enc_mp": "encoder + mean pooling", "avst_dec": "decoder",
             **{f"avst_enc_mp_depth{d}": f"encoder + mean pooling, depth {d} (Table 3)" for d in (1, 2, 3)},
             **{f"avst_{v}_toy": f"{v} variant at toy scale (CPU)" for v in ("enc", "enc_mp", "dec")}}
for _arch, _what in _VARIANTS.items():
    register_model(_arch, paper="avst", summary=f"AVST (BMVC 2021), {_what}: score search over offsets",
                   module="avsync.papers.avst.module.AVSTModule", arch=_arch,
                   configs="avsync.papers.avst.network:AVST_CONFIGS", detector="avst", public=_arch == "avst_enc_mp")
