"""Prompt loader and the packaged templates, compared with the papers' text."""

from __future__ import annotations

import pytest

from mmrank.errors import DataFormatError, UnknownNameError
from mmrank.prompts import fill, load_prompt, prompt_names


def test_fill_substitutes_identifiers_only():
    t = 'Score {n} docs. Output ```json {"[1]": 5, "[2]": 3}``` for {query}'
    assert fill(t, {"n": 2, "query": "q"}) == 'Score 2 docs. Output ```json {"[1]": 5, "[2]": 3}``` for q'
    with pytest.raises(DataFormatError, match="query"):
        fill("{query}", {})


def test_unknown_prompt_and_bad_files(tmp_path):
    with pytest.raises(UnknownNameError, match="yes_no"):
        load_prompt("no-such-prompt")
    bad = tmp_path / "bad.yaml"
    bad.write_text("user: [1, 2]\n")
    with pytest.raises(DataFormatError, match="string"):
        load_prompt("bad", path=bad)
    bad.write_text("user: 'a\n  b: ]\n")
    with pytest.raises(DataFormatError):
        load_prompt("bad", path=bad)


def test_user_supplied_prompt_file_and_extra_keys(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text('system: "S {x}"\nuser: "U {x} {y}"\ndefaults: {y: dflt}\npassage: "[{i}] {t}"\n')
    p = load_prompt("mine", path=f)
    assert p.messages(x=1) == [{"role": "system", "content": "S 1"}, {"role": "user", "content": "U 1 dflt"}]
    assert p.render_extra("passage", i=2, t="d") == "[2] d"
    assert p.fields() == {"x", "y"}


def test_every_packaged_prompt_loads():
    names = prompt_names()
    for n in ("yes_no", "prorank", "erank", "query_likelihood", "icr", "e2rank", "monot5"):
        assert n in names
    for n in names:
        assert load_prompt(n).name


def test_erank_prompt_is_the_papers_figure_5():
    p = load_prompt("erank")
    text = p.render(query="QQ", document="DD")
    assert text == (
        "Given a query and a document, please give a relevance score of 0 to 10. The goal or relevance definition "
        "is: Given a query, retrieval relevant passage.\n\nHere is the query: QQ Here is the document: DD After "
        "thinking, directly choose a relevance score from [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]. - 0 represents "
        "completely not related. - 10 means perfectly related. Desired output format: <think> put your thinking "
        "here </think><answer> Only allows an integer here </answer> Your output:"
    )
    assert p.system is None


def test_e2rank_and_query_only_templates():
    p = load_prompt("e2rank")
    docs = "\n".join(p.render_extra("doc", index=i, text=t) for i, t in [(1, "a"), (2, "b")])
    assert p.render(documents=docs, query="q") == (
        "Given a web search query and some relevant documents, rerank the documents that answer the query:\n"
        "Documents:\n[1] a\n[2] b\nSearch Query: q"
    )
    assert p.render_extra("query_only", task="T", query="q", eos="<|endoftext|>") == "Instruct: T\nQuery:q<|endoftext|>"


def test_monot5_template():
    assert load_prompt("monot5").render(query="q", document="d") == "Query: q Document: d Relevant:"
