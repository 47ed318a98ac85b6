"""Training machinery shared by every trainable stage: optimizer, poly schedule, resumable loop."""
