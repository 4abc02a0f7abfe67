"""Training recipes (one per method), the Config -> TrainingArguments mapping, callbacks."""
