"""worldmodels.rl: reinforcement learning over simulators and world models.

* :mod:`~worldmodels.rl.networks`: :class:`VectorizedCritic` (``N`` Q-networks in one batched matmul) and
  :class:`TanhGaussianActor` (SAC's squashed Gaussian policy, a saved ``Pretrained`` policy the collectors
  can roll out).
* :mod:`~worldmodels.rl.sac`: online SAC with vectorised critics, automatic entropy, checkpoints and exact
  resume; it trains the behaviour policies of the D4RL-style datasets (:mod:`worldmodels.data.d4rl`).

Submodules are imported on use.
"""
