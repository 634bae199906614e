"""The topic catalogue as code, applied idempotently to every region at start."""
