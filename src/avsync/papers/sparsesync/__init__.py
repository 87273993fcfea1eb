"""SparseSync (Iashin et al., BMVC 2022): selectors over S3D / ResNet-18 features, offset classes.

``network`` (+ ``s3d``, ``resnet_audio`` backbones), ``module`` (training), ``selector_pretraining``
(the toy stage 0), ``convert`` (the authors' checkpoints).
"""
from avsync.registry import register_model

register_model("sparsesync", paper="sparsesync", summary="SparseSync (BMVC 2022): selectors over S3D/ResNet-18 features",
               module="avsync.papers.sparsesync.module.SparseSyncModule", arch="sparsesync",
               configs="avsync.papers.sparsesync.network:SPARSESYNC_CONFIGS",
               converter="avsync.papers.sparsesync.convert", detector="grid")
register_model("sparsesync_toy", paper="sparsesync", summary="SparseSync at toy scale (CPU)",
               module="avsync.papers.sparsesync.module.SparseSyncModule", arch="sparsesync_toy",
               configs="avsync.papers.sparsesync.network:SPARSESYNC_CONFIGS", detector="grid", public=False)
for _depth in (1, 2, 3, 6):
    register_model(f"sparsesync_depth{_depth}", paper="sparsesync", summary=f"SparseSync, transformer depth {_depth} (ablation)",
                   module="avsync.papers.sparsesync.module.SparseSyncModule", arch=f"sparsesync_depth{_depth}",
                   configs="avsync.papers.sparsesync.network:SPARSESYNC_CONFIGS", detector="grid", public=False)
register_model("sparsesync_selector_pretraining", paper="sparsesync",
               summary="SparseSync toy stage 0: contrastive selector pre-training",
               module="avsync.papers.sparsesync.selector_pretraining.SelectorContrastivePretraining", arch="sparsesync_toy",
               configs="avsync.papers.sparsesync.network:SPARSESYNC_CONFIGS")
