"""The OpenAI fine-tuning backend: the same run directory, events and eval records as local."""
