"""Splitting migration files into statements, and locating them by line."""

from __future__ import annotations

import pytest

from stagecraft.providers.builtin.migration_raw import Statement, split_sql


def test_plain_statements_with_lines() -> None:
    text = "CREATE TABLE a (id int);\n\nINSERT INTO a VALUES (1);\n  SELECT 1"
    assert split_sql(text) == [
        Statement("CREATE TABLE a (id int)", 1),
        Statement("INSERT INTO a VALUES (1)", 3),
        Statement("SELECT 1", 4),
    ]


def test_comments_are_not_statements_and_do_not_move_the_start_line() -> None:
    text = "-- header\n/* block\n comment */\n\nSELECT 1; -- trailing\n-- only a comment;\n"
    assert split_sql(text) == [Statement("SELECT 1", 5)]


def test_semicolons_inside_quotes_and_comments_do_not_split() -> None:
    text = (
        "INSERT INTO t VALUES ('a;b', 'it''s;', E'x\\';y');\n"
        'SELECT "we;ird""id" FROM t /* ; /* nested ; */ ; */;\n'
        "SELECT 2 -- ; not here\n;"
    )
    statements = split_sql(text)
    assert [s.line for s in statements] == [1, 2, 3]
    assert statements[0].sql == "INSERT INTO t VALUES ('a;b', 'it''s;', E'x\\';y')"
    assert statements[1].sql.endswith("*/")


def test_dollar_quoted_bodies_stay_whole() -> None:
    text = (
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
        "DO $body$\nBEGIN\n  PERFORM 1;\n  RAISE NOTICE 'x;';\nEND\n$body$;\n"
        "SELECT $1x;"
    )
    statements = split_sql(text)
    assert [s.line for s in statements] == [1, 2, 8]
    assert statements[1].sql.startswith("DO $body$") and statements[1].sql.endswith("$body$")


def test_begin_atomic_function_body_is_one_statement() -> None:
    text = (
        "CREATE OR REPLACE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN a ELSE 0 END;\n  SELECT a + b;\nEND;\n"
        "SELECT add(1, 2);"
    )
    statements = split_sql(text)
    assert len(statements) == 2
    assert statements[0].sql.endswith("END")
    assert statements[1] == Statement("SELECT add(1, 2)", 6)


def test_begin_outside_a_routine_is_a_statement_of_its_own() -> None:
    assert [s.sql for s in split_sql("BEGIN; SELECT 1; COMMIT;")] == ["BEGIN", "SELECT 1", "COMMIT"]


@pytest.mark.parametrize("text", ["", "   \n", "-- nothing\n", "/* x */", ";;;"])
def test_empty_files_have_no_statements(text: str) -> None:
    assert split_sql(text) == []


def test_unterminated_quote_runs_to_the_end() -> None:
    assert split_sql("SELECT 'oops;\nSELECT 2;") == [Statement("SELECT 'oops;\nSELECT 2;", 1)]
