"""Model and tokenizer loading, adapters, precision. See `loader`."""
