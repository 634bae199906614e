"""flk: a Kafka-native, multi-region ingest and verification pipeline for signed PCS records."""

__version__ = "0.1.0"
