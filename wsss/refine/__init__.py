"""Refinement of CAM label maps: dense CRF and CRF-refined pseudo labels."""
