"""Generation with a trained model."""
