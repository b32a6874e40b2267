"""qa_app: ask questions of your own documents, answered by hybrid search on Milvus.

The flow, one package per step, imports pointing down only:
read and chunk (`ingest`) -> embed (`embedding`) -> store (`store`) -> search (`search`) -> answer
(`answer`) -> the app's verbs (`service`) -> the web app (`web`) and the command line (`cli`).
The records that flow through them are in `models`, the errors in `errors`, the settings in `settings`.
"""

from qa_app.errors import QAError
from qa_app.models import Document, Passage, Section
from qa_app.search.query import Query, SearchResult
from qa_app.service import QAService
from qa_app.settings import Settings, load_settings

__version__ = "0.2.0"
__all__ = ["Document", "Passage", "QAError", "QAService", "Query", "SearchResult", "Section", "Settings",
           "__version__", "load_settings"]
