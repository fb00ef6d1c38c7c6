"""worldmodels.training"""
