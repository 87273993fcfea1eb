"""Synchformer (Iashin et al., ICASSP 2024): segment-level AV contrastive pre-training (stage I) of
AST and Motionformer extractors, then offset classification (stage II), and synchronizability.

``ast``, ``motionformer``, ``segment_aggregation``, ``network`` (stage II), ``stage1``, ``stage2``,
``synchronizability`` (+ ``_metrics``, ``_plots``), ``feature_cache`` (frozen extractor features),
``attribution`` (which input regions the prediction uses), ``convert`` / ``convert_synchronizability``.
"""
from avsync.registry import register_model

_TABLE = "avsync.papers.synchformer.network:SYNCHFORMER_CONFIGS"
_STAGE2 = "avsync.papers.synchformer.stage2.SynchformerStage2Module"
register_model("synchformer", paper="synchformer",
               summary="Synchformer stage II: offset classification over frozen/tuned extractors",
               module=_STAGE2, arch="synchformer", configs=_TABLE, converter="avsync.papers.synchformer.convert",
               detector="grid")
for _arch in ("synchformer_toy", "synchformer_toy_mean_tokens"):
    register_model(_arch, paper="synchformer", summary="Synchformer stage II at toy scale (CPU)", module=_STAGE2,
                   arch=_arch, configs=_TABLE, detector="grid", public=False)
register_model("synchformer_stage1", paper="synchformer",
               summary="Synchformer stage I: segment-level AV contrastive (Segment AVCLIP)",
               module="avsync.papers.synchformer.stage1.SynchformerStage1Module", arch="synchformer", configs=_TABLE)
register_model("synchformer_synchronizability", paper="synchformer", summary="Synchformer: synchronizability head",
               module="avsync.papers.synchformer.synchronizability.SynchformerSynchronizabilityModule",
               arch="synchformer", configs=_TABLE, converter="avsync.papers.synchformer.convert_synchronizability",
               detector="grid")
