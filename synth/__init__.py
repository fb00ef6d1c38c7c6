"""SynthER: diffusion over transitions to upsample offline datasets (see the shared REFERENCES.md)."""
