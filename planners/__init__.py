"""Planners over any world model: CEM, iCEM, MPPI, gradient-based, MPC; objectives; evaluation."""
