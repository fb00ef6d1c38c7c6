"""worldmodels.encoders"""
