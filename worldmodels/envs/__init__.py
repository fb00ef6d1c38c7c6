"""worldmodels.envs"""
