"""One package per paper: its network(s), LightningModule(s), converter of the authors' checkpoints
and the parts only that paper uses. Each package's ``__init__`` registers its named
configurations in :mod:`avsync.registry` (and imports nothing heavy).

Shared code lives beside this package: :mod:`avsync.modules` (the LightningModule bases of the
two protocols), :mod:`avsync.evaluation` (metrics and evaluation protocols), :mod:`avsync.training`
(optimisers, stage schedules, exact resume), :mod:`avsync.nn` (layers several papers use),
:mod:`avsync.media`, :mod:`avsync.offsets`, :mod:`avsync.inputs`; the data layer is
``avsync.data_modules`` (the repository's top-level ``data_modules/``).
"""
