"""Class activation maps: multi-scale inference and conversion of CAMs to label maps."""
