"""worldmodels.models"""
