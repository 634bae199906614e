"""Avro schemas of every record the pipeline writes (one file per record) and their codec."""
