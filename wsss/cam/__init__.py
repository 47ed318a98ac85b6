"""Class activation maps: multi-scale inference, conversion of CAMs to label maps, and the
CAM methods (:mod:`wsss.cam.methods`)."""
