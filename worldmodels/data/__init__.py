"""worldmodels.data: offline trajectories.

* :mod:`~worldmodels.data.store`: :class:`EpisodeStore`, the canonical on-disk format (atomic appends,
  memory-mapped reads, integrity checks, cached statistics, derived arrays such as feature caches).
* :mod:`~worldmodels.data.collect`: :func:`collect`, resumable and reproducible data collection.
* :mod:`~worldmodels.data.policies`: :class:`MLPPolicy`, a checkpointed behaviour policy.
* :mod:`~worldmodels.data.datamodules`: ``FrameWindowDataModule`` and ``TransitionDataModule``.
* :mod:`~worldmodels.data.adapters`: Minari and D4RL HDF5 export/import, d3rlpy ``MDPDataset`` export.
* :mod:`~worldmodels.data.d4rl`: D4RL-style locomotion tiers built from our SAC runs, normalised scores,
  D4RL's ``qlearning_dataset`` transition view, the qpos/qvel restore check.
* :mod:`~worldmodels.data.cli`: ``worldmodels data collect|info|render|export|import|build-d4rl``.

Submodules are imported on use (the collectors' worker processes must not pay for torch).
"""
