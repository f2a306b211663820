"""`rag mcp`: a real MCP client session (the official SDK) over the server's stdio, on the real seeds."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT
from mcp import Client, ClientSession, StdioServerParameters, stdio_client
from mcp.types import CallToolResult

from rag import Assistant, Settings
from rag.answering.base import Draft
from ui.mcp_server import build_server

pytestmark = pytest.mark.anyio
SMART = "SMaRt: Improving GANs with Score Matching Regularity"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Server:
    session: ClientSession
    stray: list[Exception]  # stdout lines that were not protocol messages
    stderr: Path

    async def call(self, tool: str, **arguments) -> CallToolResult:
        return await self.session.call_tool(tool, arguments)


@pytest.fixture(scope="module")
async def server(seeded_dir, tmp_path_factory) -> AsyncIterator[Server]:
    """One `rag mcp` process over a copy of the seeded collection, for every test of this module."""
    data = tmp_path_factory.mktemp("mcp") / ".rag"
    shutil.copytree(seeded_dir, data)
    stderr = data.parent / "server-stderr.txt"
    # The SDK passes the child only a safe set of variables (PATH, HOME, …) plus these.
    params = StdioServerParameters(command=sys.executable, args=["-m", "rag.cli", "mcp"], cwd=ROOT,
                                   env={"RAG_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"})
    stray: list[Exception] = []

    async def on_message(message) -> None:
        if isinstance(message, Exception):
            stray.append(message)

    with stderr.open("w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=180, message_handler=on_message) as session:
                await session.initialize()
                yield Server(session, stray, stderr)


def _text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


async def test_lists_the_tools_with_their_schemas(server):
    listed = {tool.name: tool for tool in (await server.session.list_tools()).tools}
    assert {"search", "ask", "paper", "papers", "status"} <= set(listed)
    search = listed["search"].input_schema
    assert search["required"] == ["query"]
    assert {"query", "k", "year_from", "year_to", "author"} <= set(search["properties"])
    assert search["properties"]["k"]["default"] == 5 and search["properties"]["k"]["minimum"] == 1
    assert listed["ask"].input_schema["required"] == ["question"]
    assert listed["paper"].input_schema["required"] == ["paper_id"]
    assert {"hits"} <= set(listed["search"].output_schema["properties"])
    assert {"answer", "references", "abstained", "outcome", "confidence", "support"} <= set(
        listed["ask"].output_schema["properties"])
    assert all(tool.annotations.read_only_hint for tool in listed.values())
    assert "rag mcp: serving 221 papers" in server.stderr.read_text()


async def test_search_finds_the_paper_first(server):
    result = await server.call("search", query="score matching for GANs", k=3)
    assert not result.is_error
    hits = result.structured_content["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["title"] == SMART and hits[0]["id"].startswith("abs:")
    assert "score matching" in hits[0]["passage"].lower()
    assert _text(result).startswith(f"[1] {SMART}")
    filtered = await server.call("search", query="diffusion models", k=10, year_from=2023)
    assert filtered.structured_content["hits"] and all(h["year"] >= 2023 for h in filtered.structured_content["hits"])
    nobody = await server.call("search", query="GAN", author="Nobody Atall")
    assert not nobody.is_error and nobody.structured_content["hits"] == [] and _text(nobody) == "No matching papers."


async def test_ask_cites_the_paper_with_its_arxiv_link(server):
    result = await server.call("ask", question="How much did the dimensionality-varying diffusion process improve "
                                                "FID on FFHQ at 1024x1024?")
    assert not result.is_error
    answer = result.structured_content
    assert not answer["abstained"] and answer["outcome"] in {"answered", "low_confidence"}
    assert "52.40 to 10.46" in answer["answer"] and "[1]" in answer["answer"]
    first = answer["references"][0]
    assert first["number"] == 1 and first["id"] == "arxiv:2211.16032"
    assert first["url"] == "https://arxiv.org/abs/2211.16032" and first["year"] == 2022
    assert first["title"] == "Dimensionality-Varying Diffusion Process" and "Yujun Shen" in first["authors"]
    assert 0 < answer["confidence"] <= 1
    assert answer["support"] and all(s["verdict"] == "supported" for s in answer["support"])
    text = _text(result)
    assert "References:\n[1] Dimensionality-Varying Diffusion Process" in text
    assert "https://arxiv.org/abs/2211.16032" in text and "(id arxiv:2211.16032)" in text


async def test_ask_abstains_off_topic(server):
    answer = (await server.call("ask", question="What is the capital city of Australia?")).structured_content
    assert answer["abstained"] and answer["outcome"] == "abstained" and answer["references"] == []


async def test_paper_gives_the_merged_record_with_sources(server):
    result = await server.call("paper", paper_id="2211.12339")  # a bare arXiv id works as well as the catalog id
    assert not result.is_error
    record = result.structured_content
    assert record["id"] == "arxiv:2211.12339" and record["date"] == "2022-11-21"
    assert record["title"] == "Neural Dependencies Emerging from Learning Massive Categories"
    assert record["abstract"].startswith("This work presents two astonishing findings")
    assert len(record["sources"]) == 4
    assert all(s["where"].rsplit(":", 1)[1].isdigit() and "seeds" in s["where"] for s in record["sources"])
    assert "Abstract:\nThis work presents" in _text(result)
    same = await server.call("paper", paper_id="arxiv:2211.12339")
    assert same.structured_content == record


async def test_unknown_paper_is_a_tool_error(server):
    result = await server.call("paper", paper_id="arxiv:9999.99999")
    assert result.is_error and result.structured_content is None
    assert "no paper with id 'arxiv:9999.99999'" in _text(result)
    bad_k = await server.call("search", query="GAN", k=0)  # outside the input schema: refused, not a crash
    assert bad_k.is_error
    empty = await server.call("ask", question="   ")
    assert empty.is_error and "empty" in _text(empty)


async def test_papers_pages_and_status(server):
    page = (await server.call("papers", offset=220, limit=10)).structured_content
    assert page["total"] == 221 and page["offset"] == 220 and len(page["papers"]) == 1
    status = (await server.call("status")).structured_content
    assert status["papers"] == 221 and status["answerer"] == "extractive" and status["llm_endpoint"] == "none"


async def test_nothing_but_protocol_messages_on_stdout(server):
    await server.call("search", query="GAN")  # after the index and model have loaded
    assert server.stray == []


async def test_an_empty_collection_is_reported(tmp_path):
    # In process (the stdio path is covered above): an empty data dir, nothing ingested behind the user's back.
    assistant = Assistant(Settings(data_dir=tmp_path / "empty"))
    async with Client(build_server(assistant)) as client:
        for tool, arguments in (("search", {"query": "GAN"}), ("ask", {"question": "What is a GAN?"})):
            result = await client.call_tool(tool, arguments)
            assert result.is_error and "the collection is empty" in result.content[0].text
            assert "rag ingest" in result.content[0].text
    assert assistant.count() == 0


class FailingLLM:
    name = "llm"

    def generate(self, question, hits, history):
        yield from ()
        return Draft(text="", error="the LLM server at http://127.0.0.1:9/v1 is unreachable")


async def test_a_failed_llm_answer_lists_the_retrieved_papers(seeded, monkeypatch):
    assistant = Assistant(Settings(data_dir=seeded.settings.data_dir, llm_base_url="http://127.0.0.1:9/v1"))
    monkeypatch.setattr(assistant, "answerer", lambda name=None: FailingLLM())
    async with Client(build_server(assistant)) as client:
        result = await client.call_tool("ask", {"question": "What FID did SMaRt reach on ImageNet 64x64?"})
    answer = result.structured_content
    assert not result.is_error and answer["error"].endswith("is unreachable") and answer["answerer"] == "llm"
    assert answer["references"][0]["title"] == SMART and answer["references"][0]["number"] == 1
    assert f"Retrieved sources:\n[1] {SMART}" in result.content[0].text
