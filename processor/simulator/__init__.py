"""Event simulator: a deterministic generator of contract-v1 events, Kafka producer, CLI."""
