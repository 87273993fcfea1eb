"""SyncNet (Chung & Zisserman, ACCV 2016 Workshops), the baseline and the LSE-C/LSE-D network.

``network``, ``module`` (training), ``convert`` (syncnet_python's ``syncnet_v2.model``).
"""
from avsync.registry import register_model

register_model("syncnet", paper="syncnet", summary="SyncNet (baseline): contrastive face/MFCC embeddings",
               module="avsync.papers.syncnet.module.SyncNetModule", arch="syncnet",
               configs="avsync.papers.syncnet.network:SYNCNET_CONFIGS", converter="avsync.papers.syncnet.convert",
               detector="syncnet")
register_model("syncnet_toy", paper="syncnet", summary="SyncNet at toy scale (CPU)",
               module="avsync.papers.syncnet.module.SyncNetModule", arch="syncnet_toy",
               configs="avsync.papers.syncnet.network:SYNCNET_CONFIGS", detector="syncnet", public=False)
