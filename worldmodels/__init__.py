"""worldmodels: learn world models from offline data and use them.

Subpackages: ``envs`` (Gymnasium environments), ``data`` (episode store, collectors, adapters,
DataModules), ``encoders`` (visual encoders + feature cache), ``models`` (world models), ``training``
(LightningModules and the Lightning CLI). ``planners`` and ``synth`` build on this package.
"""

__version__ = "0.1.0"
