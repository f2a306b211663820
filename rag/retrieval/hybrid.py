"""Hybrid retrieval on LlamaIndex: Chroma (dense) + BM25 (lexical), fused, one hit per paper."""

from __future__ import annotations

import math
from dataclasses import dataclass

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.llms import MockLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.retrievers import QueryFusionRetriever
from llama_index.core.retrievers.fusion_retriever import FUSION_MODES
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters
from pydantic import Field

from rag.index.catalog import Catalog
from rag.index.lexical import Where
from rag.index.search_index import Index
from rag.models import Hit
from rag.settings import Settings


@dataclass(frozen=True)
class SearchFilter:
    """Metadata filters honoured by both the dense and the lexical side."""

    year_from: int | None = None
    year_to: int | None = None
    author: str | None = None
    arxiv_id: str | None = None
    paper_ids: tuple[str, ...] | None = None  # restrict to these papers (chat follow-ups, author filter)

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.year_from, self.year_to, self.author, self.arxiv_id, self.paper_ids))

    def to_lexical(self) -> Where:
        return Where(self.year_from, self.year_to, self.arxiv_id, self.paper_ids)

    def to_llama(self) -> MetadataFilters | None:
        filters: list[MetadataFilter] = []
        if self.year_from is not None:
            filters.append(MetadataFilter(key="year", value=self.year_from, operator=FilterOperator.GTE))
        if self.year_to is not None:
            filters.append(MetadataFilter(key="year", value=self.year_to, operator=FilterOperator.LTE))
        if self.arxiv_id:
            filters.append(MetadataFilter(key="arxiv_id", value=self.arxiv_id, operator=FilterOperator.EQ))
        if self.paper_ids is not None:
            filters.append(MetadataFilter(key="paper_id", value=list(self.paper_ids), operator=FilterOperator.IN))
        return MetadataFilters(filters=filters) if filters else None  # type: ignore[arg-type]


class _RecordingRetriever(BaseRetriever):
    """Passes through a dense retriever, remembering each chunk's cosine similarity (fusion overwrites scores)."""

    def __init__(self, inner: BaseRetriever, sink: dict[str, float]) -> None:
        super().__init__()
        self._inner = inner
        self._sink = sink

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        nodes = self._inner.retrieve(query_bundle)
        for n in nodes:
            # LlamaIndex's Chroma store reports exp(-distance); with cosine space distance = 1 - cos.
            self._sink[n.node.node_id] = 1.0 + math.log(max(n.score or 1e-12, 1e-12))
        return nodes


class LexicalRetriever(BaseRetriever):
    """BM25 over the database's lexical index, with the same filters as the dense side."""

    def __init__(self, index: Index, top_k: int, where: Where) -> None:
        super().__init__()
        self._index = index
        self._top_k = top_k
        self._where = where

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        found = self._index.lexical.search(query_bundle.query_str, self._top_k, self._where)
        nodes = self._index.lexical.nodes([chunk_id for chunk_id, _ in found])
        return [NodeWithScore(node=nodes[chunk_id], score=score) for chunk_id, score in found if chunk_id in nodes]


class OnePerPaper(BaseNodePostprocessor):
    """Keep the best chunk of each paper, up to ``top_n`` papers."""

    top_n: int = Field(default=5)

    def _postprocess_nodes(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None):
        seen: set[str] = set()
        kept: list[NodeWithScore] = []
        for n in nodes:
            pid = n.node.metadata.get("paper_id")
            if pid in seen:
                continue
            seen.add(pid)
            kept.append(n)
            if len(kept) == self.top_n:
                break
        return kept


class HybridRetriever:
    """Dense + lexical candidates, fused (relative score or reciprocal rank), then one hit per paper."""

    def __init__(self, index: Index, catalog: Catalog, settings: Settings) -> None:
        self.index = index
        self.catalog = catalog
        self.candidates = settings.candidates
        self.mode = FUSION_MODES.RELATIVE_SCORE if settings.fusion == "relative" else FUSION_MODES.RECIPROCAL_RANK
        self.dense_weight = settings.dense_weight

    def retrieve(self, query: str, k: int, where: SearchFilter | None = None) -> tuple[list[Hit], float]:
        """Up to k hits (one per paper) and the best dense cosine similarity seen (-1 when none)."""
        where = where or SearchFilter()
        if where.author:
            ids = self.catalog.ids_by_author(where.author)
            if where.paper_ids is not None:
                ids = [i for i in ids if i in set(where.paper_ids)]
            where = SearchFilter(where.year_from, where.year_to, None, where.arxiv_id, tuple(ids))
        if where.paper_ids is not None and not where.paper_ids:
            return [], -1.0
        filters = where.to_llama()
        similarities: dict[str, float] = {}
        dense = _RecordingRetriever(
            self.index.vector_index.as_retriever(similarity_top_k=self.candidates, filters=filters), similarities
        )
        lexical = LexicalRetriever(self.index, self.candidates, where.to_lexical())
        retrievers: list[BaseRetriever] = [dense, lexical]
        weights = [self.dense_weight, 1.0 - self.dense_weight]
        fusion = QueryFusionRetriever(
            retrievers, mode=self.mode, similarity_top_k=2 * self.candidates, retriever_weights=weights,
            num_queries=1, use_async=False, llm=MockLLM(),  # one query: no LLM call is ever made
        )
        nodes = OnePerPaper(top_n=k).postprocess_nodes(fusion.retrieve(query))
        papers = self.catalog.get_many(n.node.metadata.get("paper_id", "") for n in nodes)
        hits = []
        for n in nodes:
            paper = papers.get(n.node.metadata.get("paper_id", ""))
            if paper is None:
                continue  # a chunk whose paper left the catalog (an ingest still running elsewhere)
            hits.append(Hit(paper=paper, passage=n.node.get_content(), score=n.score or 0.0,
                            similarity=similarities.get(n.node.node_id)))
        return hits, max(similarities.values(), default=-1.0)
