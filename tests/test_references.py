"""Reference-manager exports in (BibTeX, RIS, CSL-JSON as Zotero, JabRef and Mendeley write them) and an answer's
citations out (BibTeX, RIS), read back by the same readers."""

from __future__ import annotations

import json

import bibtexparser
import pytest

from rag.answering.export import bibtex, citation_keys, ris
from rag.ingest.loaders import load
from rag.ingest.merge import build_papers, candidate_keys, paper_id
from rag.ingest.records import RawRecord, RecordError, arxiv_id_of_doi, normalize_doi
from rag.ingest.references import is_csl_json, read_bibtex, read_csl_json, read_ris
from rag.models import Answer, Citation, Paper, Source
from rag.settings import Settings

LIMIT = Settings().max_abstract_chars

SMART = ("Generative adversarial networks (GANs) usually struggle in learning from highly diverse data, whose "
         "underlying manifold is complex. In this work, we revisit the mathematical foundations of GANs, and "
         "theoretically reveal that the native adversarial loss for GAN training is insufficient.")
TAGALIGN = ("The crux of learning vision-language models is to extract semantically aligned information from "
            "visual and linguistic data. Existing attempts usually face the problem of coarse alignment, e.g., the "
            "vision encoder struggles in localizing an attribute-specified object.")

# Zotero's BibTeX export: tab indents, braces protecting capitals, LaTeX accents, an abstract over several lines,
# a month macro, the arXiv DOI and an "arXiv:ID [cs]" note for preprints.
ZOTERO_BIB = r"""
@misc{xia_smart_2023,
	title = {{SMaRt}: Improving {GANs} with Score Matching Regularity},
	shorttitle = {{SMaRt}},
	url = {http://arxiv.org/abs/2311.18208},
	doi = {10.48550/arXiv.2311.18208},
	abstract = {Generative adversarial networks ({GANs}) usually struggle in learning from highly diverse data,
whose underlying manifold is complex. In this work, we revisit the mathematical foundations of {GANs}, and
theoretically reveal that the native adversarial loss for {GAN} training is insufficient.},
	urldate = {2024-01-15},
	publisher = {arXiv},
	author = {Xia, Mengfei and M{\"u}ller, J{\"o}rg and Lef{\`e}vre, Ren\'e and van der Berg, Jan},
	month = dec,
	year = {2023},
	note = {arXiv:2311.18208 [cs]},
	keywords = {Computer Science - Computer Vision and Pattern Recognition},
}

@article{chen_untitled_2022,
	title = {A Paper Whose Export Has No Abstract},
	journal = {Journal of Examples},
	author = {Chen, Li},
	year = {2022},
}
"""

# JabRef: capitalised entry types, aligned fields, an @String, biblatex-style eprint fields, a bad DOI and year,
# an entry broken off before its closing brace, and a repeated key.
JABREF_BIB = r"""% Encoding: UTF-8

@String{cvpr = {IEEE/CVF Conference on Computer Vision and Pattern Recognition}}

@InProceedings{Liu2024TagAlign,
  author        = {Liu, Qinying and Wu, Wei and de la Cruz, Mar{\'\i}a},
  booktitle     = cvpr,
  title         = {{TagAlign}: Improving Vision-Language Alignment with Multi-Tag Classification},
  year          = {2024},
  month         = jun,
  abstract      = {The crux of learning vision-language models is to extract semantically aligned information
                   from visual and linguistic data. Existing attempts usually face the problem of coarse alignment,
                   e.g., the vision encoder struggles in localizing an attribute-specified object.},
  archiveprefix = {arXiv},
  eprint        = {2312.14149},
  doi           = {https://doi.org/10.1109/CVPR52733.2024.01234},
}

@Article{Bad2020,
  author   = {Nobody, Anne},
  title    = {An Entry With a Bad {DOI}},
  journal  = {Journal of Things},
  year     = {20x0},
  doi      = {not-a-doi},
  abstract = {This abstract is long enough to be kept: the entry stays, only its broken values are dropped.},
}

@Article{Broken2021,
  title = {Unclosed
@Misc{Twice, title = {First}, abstract = {The first entry with this key is the one kept, as BibTeX would keep it.}}
@Misc{Twice, title = {Second}, abstract = {The second entry with this key is reported and never silently merged.}}

@Comment{jabref-meta: databaseType:bibtex;}
"""

# Mendeley's RIS export: CRLF lines, "Last, First" authors, an abstract continued on a second line, a DOI and the
# arXiv link; then a reference without an abstract and one missing its ER line.
MENDELEY_RIS = "\r\n".join([
    "TY  - JOUR", "AU  - Xia, Mengfei", "AU  - Müller, Jörg", "AU  - Lefèvre, René",
    "TI  - SMaRt: Improving GANs with Score Matching Regularity",
    "JO  - IEEE Transactions on Pattern Analysis and Machine Intelligence", "PY  - 2023", "DA  - 2023/12/01",
    "AB  - " + SMART[:120], SMART[120:], "DO  - 10.1109/TPAMI.2023.123456", "UR  - https://arxiv.org/abs/2311.18208v2",
    "ER  - ", "",
    "TY  - JOUR", "AU  - Chen, Li", "TI  - A Reference Without Abstract", "PY  - 2022", "ER  - ", "",
    "TY  - CPAPER", "TI  - Cut Short", "AB  - An abstract that is long enough to keep, though the file ends early.",
    "PY  - 2021", ""])

# Zotero's "CSL JSON" export.
ZOTERO_CSL = [
    {"id": "http://zotero.org/users/local/AbCd/items/ZX12CV34", "type": "paper-conference",
     "abstract": TAGALIGN, "container-title": "IEEE/CVF Conference on Computer Vision and Pattern Recognition",
     "DOI": "10.1109/CVPR52733.2024.01234", "note": "arXiv:2312.14149 [cs]", "URL": "http://arxiv.org/abs/2312.14149",
     "title": "TagAlign: Improving Vision-Language Alignment with Multi-Tag Classification",
     "author": [{"family": "Liu", "given": "Qinying"}, {"family": "Cruz", "given": "María",
                                                          "non-dropping-particle": "de la"},
                {"literal": "The TagAlign Team"}],
     "issued": {"date-parts": [["2024", 6, 17]]}},
    {"id": "doe2020", "type": "article-journal", "title": "Nothing To Read",
     "author": [{"family": "Doe", "given": "Jane"}], "issued": {"date-parts": [[2020]]}},
    {"id": "listed", "type": "article", "title": ["not", "text"], "abstract": TAGALIGN},
]


def _line(text: str, needle: str) -> int:
    """The 1-based line of the first line holding ``needle``."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_zotero_bibtex_decodes_latex_and_keeps_provenance():
    records, failed, warnings = read_bibtex(ZOTERO_BIB, "lib.bib")
    [smart] = records
    assert smart.title == "SMaRt: Improving GANs with Score Matching Regularity"  # braces removed
    assert smart.authors == ["Mengfei Xia", "Jörg Müller", "René Lefèvre", "Jan van der Berg"]
    assert smart.arxiv_id == "2311.18208" and smart.doi is None  # arXiv's DOI is the arXiv id
    assert smart.date == "2023-12" and smart.key == "xia_smart_2023" and smart.layout == "bibtex"
    assert smart.line == 2 and "(GANs) usually struggle" in smart.abstract
    where = f"lib.bib:{_line(ZOTERO_BIB, '@article{chen_untitled_2022')}"
    assert failed == [(where, "entry 'chen_untitled_2022' has no abstract (nothing to answer from)")]
    assert warnings == []


def test_jabref_bibtex_warns_about_bad_values_and_reports_broken_entries():
    records, failed, warnings = read_bibtex(JABREF_BIB, "jab.bib")
    tag, bad, twice = records
    assert tag.authors == ["Qinying Liu", "Wei Wu", "María de la Cruz"]
    assert tag.venue == "IEEE/CVF Conference on Computer Vision and Pattern Recognition"  # @String resolved
    assert (tag.arxiv_id, tag.doi, tag.date, tag.key) == ("2312.14149", "10.1109/cvpr52733.2024.01234", "2024-06",
                                                          "Liu2024TagAlign")
    assert (bad.doi, bad.date, bad.title) == (None, None, "An Entry With a Bad DOI")
    where = f"jab.bib:{_line(JABREF_BIB, '@Article{Bad2020')}"
    assert warnings == [(where, "entry 'Bad2020': year dropped: not a year: '20x0'"),
                        (where, "entry 'Bad2020': DOI dropped: not a DOI (want 10.NNNN/…): 'not-a-doi'")]
    assert twice.title == "First"
    assert failed[0][0] == f"jab.bib:{_line(JABREF_BIB, '@Article{Broken2021')}"
    assert "BibTeX syntax error in '@Article{Broken2021, title = {Unclosed': Unexpected block start" in failed[0][1]
    first, second = _line(JABREF_BIB, "title = {First}"), _line(JABREF_BIB, "title = {Second}")
    assert failed[1] == (f"jab.bib:{second}",
                         f"entry 'Twice': duplicate citation key (the entry at line {first} was kept)")


def test_mendeley_ris_reads_multiline_abstracts_and_reports_by_title():
    records, failed, warnings = read_ris(MENDELEY_RIS, "lib.ris")
    smart, cut = records
    assert smart.abstract.split() == SMART.split()
    assert smart.authors == ["Mengfei Xia", "Jörg Müller", "René Lefèvre"]
    assert (smart.doi, smart.arxiv_id, smart.date, smart.layout) == ("10.1109/tpami.2023.123456", "2311.18208",
                                                                     "2023-12", "ris")
    assert smart.venue == "IEEE Transactions on Pattern Analysis and Machine Intelligence"
    assert failed == [("lib.ris:15", "entry 'A Reference Without Abstract' has no abstract (nothing to answer from)")]
    assert (cut.title, cut.date, cut.line) == ("Cut Short", "2021", 21)
    assert warnings == [("lib.ris:21", "reference has no 'ER  -' end line")]


def test_zotero_csl_json_is_told_from_other_json_and_read_by_item():
    text = json.dumps(ZOTERO_CSL, indent="\t", ensure_ascii=False)
    assert is_csl_json(text)
    assert not is_csl_json(json.dumps([{"title": "T", "abstract": TAGALIGN, "authors": "A B"}]))
    assert not is_csl_json('{"title": "T"}\n{"title": "U"}\n') and not is_csl_json("[" * 100_000)
    records, failed, warnings = read_csl_json(text, "lib.json")
    [tag] = records
    assert tag.authors == ["Qinying Liu", "María de la Cruz", "The TagAlign Team"]
    assert (tag.doi, tag.arxiv_id, tag.date, tag.layout, tag.line) == ("10.1109/cvpr52733.2024.01234", "2312.14149",
                                                                       "2024-06", "csl-json", 2)
    assert tag.venue.startswith("IEEE/CVF") and tag.key.endswith("items/ZX12CV34") and warnings == []
    doe, listed = _line(text, '"doe2020"') - 1, _line(text, '"listed"') - 1  # each item opens a line above its id
    assert failed == [(f"lib.json:{doe}", "entry 'doe2020' has no abstract (nothing to answer from)"),
                      (f"lib.json:{listed}", "entry 'listed': field 'title' must be text, got list")]
    # A file cut off mid-item keeps the items before it and names the line where it broke.
    cut = text[: text.index('"doe2020"') + 40]
    records, failed, _ = read_csl_json(cut, "cut.json")
    assert len(records) == 1 and failed == [(f"cut.json:{cut.count(chr(10)) + 1}", failed[0][1])]
    assert failed[0][1].startswith("invalid JSON: ")


def test_doi_normalisation():
    assert normalize_doi("https://doi.org/10.1109/CVPR.2024.00123") == "10.1109/cvpr.2024.00123"
    assert normalize_doi("doi: 10.1000/XYZ") == normalize_doi("http://dx.doi.org/10.1000/xyz") == "10.1000/xyz"
    assert normalize_doi(" ") is None
    for junk in ("10.12/short-prefix", "10.1000/", "10.1000/two words", "doi.org"):
        with pytest.raises(RecordError, match="not a DOI"):
            normalize_doi(junk)
    assert arxiv_id_of_doi("10.48550/arxiv.2311.18208") == "2311.18208" and arxiv_id_of_doi("10.1000/x") is None


def _record(abstract: str, doi: str | None = None, arxiv_id: str | None = None, line: int = 1) -> RawRecord:
    return RawRecord(path="x.bib", line=line, layout="bibtex", abstract=abstract, doi=doi, arxiv_id=arxiv_id)


def test_the_doi_is_a_bucket_and_an_identity():
    words = SMART.lower().split()
    assert ("doi", "10.1/x") in candidate_keys(_record(SMART, "10.1/x"), words)
    assert not any(key[0] == "doi" for key in candidate_keys(_record(SMART), words))
    assert paper_id("2311.18208", SMART, "10.1/x") == "arxiv:2311.18208"
    assert paper_id(None, SMART, "10.1/x") == "doi:10.1/x" and paper_id(None, SMART).startswith("abs:")
    # Same DOI: one paper, whatever the abstracts say; different DOIs: two papers, however alike.
    same = build_papers([_record(SMART, "10.1/x"), _record(TAGALIGN, "10.1/x", line=2)])
    assert len(same) == 1 and same[0].id == "doi:10.1/x"
    apart = build_papers([_record(SMART, "10.1/x"), _record(SMART, "10.1/y", line=2), _record(SMART, line=3)])
    assert sorted(len(p.sources) for p in apart) == [1, 2]  # the record without a DOI joins the first one


def test_ingest_merges_a_bib_and_a_ris_by_doi_and_survives_garbage(tmp_path):
    # The same paper in a .bib and a .ris: the abstracts differ (a trailing sentence, a typo) beyond what
    # abstract matching accepts; the DOI says they are one paper.
    (tmp_path / "zotero.bib").write_text(
        "@article{xia2023,\n  title = {{SMaRt}: Improving {GANs} with Score Matching Regularity},\n"
        "  author = {Xia, Mengfei and M{\\\"u}ller, J{\\\"o}rg},\n  journal = {IEEE TPAMI},\n  year = {2023},\n"
        f"  doi = {{10.1109/TPAMI.2023.123456}},\n  abstract = {{{SMART}}}\n}}\n", encoding="utf-8")
    edited = SMART.replace("highly diverse", "very diverse") + " Code and models are public on our project page."
    (tmp_path / "mendeley.ris").write_text(
        "TY  - JOUR\nAU  - Xia, Mengfei\nTI  - SMaRt: Improving GANs with Score Matching Regularity\n"
        f"DO  - https://doi.org/10.1109/tpami.2023.123456\nPY  - 2023\nAB  - {edited}\nER  - \n", encoding="utf-8")
    # Two different DOIs never merge, even with the very same abstract.
    (tmp_path / "other.ris").write_text(
        f"TY  - JOUR\nTI  - A Reprint\nDO  - 10.5555/reprint.1\nPY  - 2024\nAB  - {SMART}\nER  - \n", encoding="utf-8")
    (tmp_path / "garbage.bib").write_bytes(b"}}}{{{ @@@ \\\\ not bibtex at all ))) \n" * 50)
    (tmp_path / "garbage.ris").write_text("TY  JOUR without the dash\nnothing else\n", encoding="utf-8")
    (tmp_path / "garbage.json").write_text('[{"type": "article", "DOI": "10.1/x", "title": ', encoding="utf-8")
    (tmp_path / "binary.ris").write_bytes(bytes(range(256)) * 20)
    loaded = load([tmp_path], LIMIT)
    failed = dict(loaded.failed)
    assert failed[f"{tmp_path / 'garbage.bib'}:1"] == "no BibTeX entries (@article{key, …}) found"
    assert failed[f"{tmp_path / 'garbage.ris'}:1"] == "no RIS references (TY  - … ER  -) found"
    assert "invalid JSON" in failed[f"{tmp_path / 'garbage.json'}:1"]
    assert "binary file" in failed[f"{tmp_path / 'binary.ris'}:1"]
    papers = build_papers(loaded.records)
    assert len(papers) == 2
    merged = next(p for p in papers if p.id == "doi:10.1109/tpami.2023.123456")
    assert sorted(s.layout for s in merged.sources) == ["bibtex", "ris"] and merged.venue == "IEEE TPAMI"
    assert merged.authors == ["Mengfei Xia", "Jörg Müller"] and merged.year == 2023
    assert merged.doi_url == "https://doi.org/10.1109/tpami.2023.123456"
    assert next(s for s in merged.sources if s.layout == "bibtex").fields["key"] == "xia2023"


def _paper(pid: str, title: str, authors: list[str], abstract: str, **fields) -> Paper:
    return Paper(id=pid, title=title, authors=authors, abstract=abstract, **fields)


PAPERS = [
    _paper("arxiv:2311.18208", "SMaRt: Improving {GANs} with 100% & $x_1$ — “quotes” -- ^_^ #1 ~", ["Mengfei Xia",
           "Jörg Müller", "Jan van der Berg"], SMART, arxiv_id="2311.18208", url="https://arxiv.org/abs/2311.18208",
           date="2023-12", venue="Proc. of Things & Stuff"),
    _paper("doi:10.1109/cvpr52733.2024.01234", "TagAlign: Improving Vision-Language Alignment",
           ["Qinying Liu", "María de la Cruz"], TAGALIGN, doi="10.1109/cvpr52733.2024.01234", date="2024",
           sources=[Source(path="lib.bib", line=5, layout="bibtex", fields={"key": "Liu2024TagAlign"})]),
    _paper("abs:1", "Scaling Up GANs for Text-to-Image Synthesis", ["Mengfei Xia"], "The recent success of "
           "text-to-image synthesis has taken the world by storm and captured the general public's imagination.",
           date="2023"),
    _paper("abs:2", "The Smart Way", ["Mengfei Xia"], "Generating a detailed near-field perceptual model of the "
           "environment is an important and challenging problem in both self-driving vehicles and autonomous "
           "robots.", date="2023"),
]


def _answer(papers: list[Paper]) -> Answer:
    return Answer(question="q", text="t", answerer="extractive",
                  citations=[Citation(number=n, paper=p, passage="p") for n, p in enumerate(papers, 1)])


def test_citation_keys_are_the_bib_key_or_made_and_unique():
    # The source's own BibTeX key; else last name + year + first title word (skipping "The"); repeats numbered.
    assert citation_keys(PAPERS) == ["xia2023smart", "Liu2024TagAlign", "xia2023scaling", "xia2023smart_2"]
    assert citation_keys([_paper("abs:3", None, [], SMART)]) == ["anon"]


def test_answer_exports_bibtex_and_ris_without_abstracts():
    answer = _answer(PAPERS[:2])
    text = answer.bibtex()
    entries = bibtexparser.parse_string(text).entries
    assert [(e.entry_type, e.key) for e in entries] == [("article", "xia2023smart"), ("misc", "Liu2024TagAlign")]
    assert entries[0]["eprint"] == "2311.18208" and entries[0]["archiveprefix"] == "arXiv"
    assert entries[0]["journal"] == r"Proc. of Things \& Stuff" and entries[1]["doi"] == "10.1109/cvpr52733.2024.01234"
    assert "abstract" not in text and "url = {https://doi.org/10.1109/cvpr52733.2024.01234}" in text
    assert "M\\\"uller, J\\\"org and van der Berg, Jan" in text
    out = answer.ris()
    assert out.startswith("TY  - JOUR\nID  - xia2023smart\n") and "AU  - van der Berg, Jan" in out
    assert "DO  - 10.1109/cvpr52733.2024.01234" in out and "AB  -" not in out
    assert _answer([]).bibtex() == "" and _answer([]).ris() == ""


@pytest.mark.parametrize("export, read", [(bibtex, read_bibtex), (ris, read_ris)])
def test_exported_citations_read_back_as_the_same_papers(export, read):
    records, failed, warnings = read(export(PAPERS, abstracts=True), "back")
    assert failed == [] and warnings == []
    assert [(r.title, r.authors, r.arxiv_id, r.doi, r.date, r.abstract) for r in records] == [
        (p.title, p.authors, p.arxiv_id, p.doi, p.date, p.abstract) for p in PAPERS]
    again = {p.id for p in build_papers(records)}
    assert {"arxiv:2311.18208", "doi:10.1109/cvpr52733.2024.01234"} <= again and len(again) == len(PAPERS)
    # Without abstracts (the default), the entries still read back; ingest rejects them by name.
    _, failed, _ = read(export(PAPERS), "short")
    assert [why for _, why in failed][0] == "entry 'xia2023smart' has no abstract (nothing to answer from)"
