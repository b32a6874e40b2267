"""Loading: read files into documents, split them into passages, embed and store what changed."""
