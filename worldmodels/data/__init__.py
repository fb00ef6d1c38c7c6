"""worldmodels.data"""
