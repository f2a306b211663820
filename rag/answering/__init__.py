"""The answering layer: decide whether the collection answers (answerability), compose a cited answer
(extractive or LLM), validate its citations and check each sentence against its sources (grounding)."""
