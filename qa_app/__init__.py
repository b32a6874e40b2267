"""qa_app: ask questions of your own documents, answered by hybrid search on Milvus."""

__version__ = "0.1.0"
