"""tests/mutations.py names code by its text: when that code moves or changes, the entry
must follow it, or the mutation run reports a protection as missing instead of testing it."""

from __future__ import annotations

import pytest

from tests.mutations import MUTATIONS, ROOT, Mutation


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_each_mutation_finds_its_code_once_and_still_compiles(mutation: Mutation) -> None:
    source = (ROOT / mutation.path).read_text()
    assert source.count(mutation.before) == 1, f"{mutation.path} no longer holds the snippet"
    compile(source.replace(mutation.before, mutation.after, 1), mutation.path, "exec")


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_each_mutation_names_tests_that_exist(mutation: Mutation) -> None:
    for test in mutation.tests:
        path, _, name = test.partition("::")
        assert (ROOT / path).is_file(), test
        assert not name or f"def {name.split('[')[0]}(" in (ROOT / path).read_text(), test
