"""Small helpers shared by the stages: logging, seeding, device choice."""
