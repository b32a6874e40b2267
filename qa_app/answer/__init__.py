"""Answering from retrieved passages: an LLM over an OpenAI-compatible API, or extracted sentences.

The steps, one module each: `llm_client` (the streaming client), `prompt`, `citations`, `extractive`
(the answer without an LLM), and `answerer`, which ties them into a stream of typed events.
"""

from qa_app.answer.answerer import (
    EXTRACTIVE_MODEL,
    NO_ANSWER_MESSAGE,
    NO_PASSAGES_MESSAGE,
    Answer,
    Answerer,
    AnswerEvent,
    Citations,
    Done,
    Extracted,
    Failed,
    NoAnswer,
    Token,
)
from qa_app.answer.citations import Citation, extract_citations
from qa_app.answer.extractive import Sentence, extractive_answer, split_sentences
from qa_app.answer.llm_client import LLMClient, StreamInfo, chat_completions_url
from qa_app.answer.prompt import INSTRUCTIONS, build_prompt, rough_token_count, strip_echo
from qa_app.errors import LLMError, LLMTimeout

__all__ = ["EXTRACTIVE_MODEL", "INSTRUCTIONS", "NO_ANSWER_MESSAGE", "NO_PASSAGES_MESSAGE", "Answer", "AnswerEvent",
           "Answerer", "Citation", "Citations", "Done", "Extracted", "Failed", "LLMClient", "LLMError", "LLMTimeout",
           "NoAnswer", "Sentence", "StreamInfo", "Token", "build_prompt", "chat_completions_url",
           "extract_citations", "extractive_answer", "rough_token_count", "split_sentences", "strip_echo"]
