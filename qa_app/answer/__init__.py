"""Answering from retrieved passages: an LLM over an OpenAI-compatible API, or extracted sentences.

The steps, one module each: `llm_client` (the streaming client), `prompt`, `citations`, `claims` (each
generated sentence checked against the passages it cites), `extractive` (the answer without an LLM),
`next_steps` (why there is no answer, and what to try), and `answerer`, which ties them into a stream
of typed events.
"""

from qa_app.answer.answerer import (
    EXTRACTIVE_MODEL,
    NO_ANSWER_MESSAGE,
    NO_MATCH_MESSAGE,
    NO_PASSAGES_MESSAGE,
    Answer,
    Answerer,
    AnswerEvent,
    Citations,
    Done,
    Embed,
    Extracted,
    Failed,
    NoAnswer,
    Token,
)
from qa_app.answer.citations import Citation, extract_citations
from qa_app.answer.claims import THRESHOLDS, Claim, Thresholds, check_claims, declines
from qa_app.answer.extractive import WEIGHTS, Sentence, Weights, extractive_answer, split_sentences
from qa_app.answer.llm_client import LLMClient, StreamInfo, chat_completions_url
from qa_app.answer.next_steps import REASONS, Asked, Suggestion
from qa_app.answer.prompt import INSTRUCTIONS, build_prompt, rough_token_count, strip_echo
from qa_app.errors import LLMError, LLMTimeout

__all__ = ["EXTRACTIVE_MODEL", "INSTRUCTIONS", "NO_ANSWER_MESSAGE", "NO_MATCH_MESSAGE", "NO_PASSAGES_MESSAGE",
           "REASONS", "THRESHOLDS", "WEIGHTS", "Answer", "AnswerEvent", "Answerer", "Asked", "Citation", "Citations",
           "Claim", "Done", "Embed", "Extracted", "Failed", "LLMClient", "LLMError", "LLMTimeout", "NoAnswer",
           "Sentence", "StreamInfo", "Suggestion", "Thresholds", "Token", "Weights", "build_prompt",
           "chat_completions_url", "check_claims", "declines", "extract_citations", "extractive_answer",
           "rough_token_count", "split_sentences", "strip_echo"]
