"""The local two-region platform: Kafka, MirrorMaker 2, Redis, PostgreSQL and S3 per region."""
