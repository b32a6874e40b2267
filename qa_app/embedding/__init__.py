"""Dense embeddings: the model, the arithmetic this CPU runs it in, and batching of questions."""
